//! Text fields: trimmed, bounded, and free of NUL (PostgreSQL text cannot
//! hold one).

use super::{identity, Invalid};

pub const BLANK: &str = "can't be blank";
pub const NULL: &str = "can't be null";
pub const INVISIBLE: &str = "can't contain invisible or control characters";
pub const STRAY_MODIFIER: &str =
    "can't contain a combining mark or variation selector that no character before it takes";

pub fn too_long(max: usize) -> String {
    format!("is too long (maximum is {max} characters)")
}

/// A required text: present, showing something (not only white space,
/// invisible characters or marks), not too long, no NUL; trimmed.
pub fn required(value: Option<String>, max: usize) -> Result<String, Invalid> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    if !identity::shows_something(&value) {
        return Err(if value.chars().any(identity::is_invisible) {
            INVISIBLE.into()
        } else {
            BLANK.into()
        });
    }
    bounded(value, max)
}

/// An optional text (bio, image): absent, null and `""` are all `None`.
pub fn optional(value: Option<String>, max: usize) -> Result<Option<String>, Invalid> {
    let Some(value) = value.map(|v| v.trim().to_owned()) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    bounded(value, max).map(Some)
}

fn bounded(value: String, max: usize) -> Result<String, Invalid> {
    if value.chars().count() > max {
        Err(too_long(max).into())
    } else if value.contains('\0') {
        Err("can't contain NUL characters".into())
    } else {
        Ok(value)
    }
}
