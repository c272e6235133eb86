//! Input rules shared by the routes. Each check adds field errors so that a
//! client learns about every bad field at once.

use crate::auth::password;
use crate::error::FieldErrors;

pub const USERNAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 1_000;
pub const ARTICLE_BODY_MAX: usize = 50_000;
pub const COMMENT_BODY_MAX: usize = 10_000;
pub const TAG_MAX: usize = 64;
pub const TAGS_PER_ARTICLE_MAX: usize = 20;
pub const URL_MAX: usize = 2_000;
pub const BIO_MAX: usize = 2_000;

pub const BLANK: &str = "can't be blank";
pub const NULL: &str = "can't be null";

fn too_long(max: usize) -> String {
    format!("is too long (maximum is {max} characters)")
}

/// A required text field: present, not blank, not too long, no NUL.
/// Returns the value (trimmed) when valid.
pub fn required_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    if value.is_empty() {
        errors.add(field, BLANK);
        return None;
    }
    bounded(errors, field, value, max)
}

/// A non-empty text: not too long, no NUL (PostgreSQL text cannot hold one).
fn bounded(errors: &mut FieldErrors, field: &str, value: String, max: usize) -> Option<String> {
    if value.chars().count() > max {
        errors.add(field, too_long(max));
        None
    } else if value.contains('\0') {
        errors.add(field, "can't contain NUL characters");
        None
    } else {
        Some(value)
    }
}

pub fn username(errors: &mut FieldErrors, value: Option<String>) -> Option<String> {
    let value = required_text(errors, "username", value, USERNAME_MAX)?;
    if value
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Some(value)
    } else {
        errors.add(
            "username",
            "may contain only letters, digits, '_', '-' and '.'",
        );
        None
    }
}

pub fn email(errors: &mut FieldErrors, value: Option<String>) -> Option<String> {
    let value = required_text(errors, "email", value, EMAIL_MAX)?;
    let well_formed = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if well_formed {
        Some(value)
    } else {
        errors.add("email", "is invalid");
        None
    }
}

/// Passwords are not trimmed: every character counts.
pub fn password(errors: &mut FieldErrors, value: Option<String>) -> Option<String> {
    let value = value.unwrap_or_default();
    let length = value.chars().count();
    if value.is_empty() {
        errors.add("password", BLANK);
        None
    } else if length < password::MIN_LENGTH {
        errors.add(
            "password",
            format!(
                "is too short (minimum is {} characters)",
                password::MIN_LENGTH
            ),
        );
        None
    } else if length > password::MAX_LENGTH {
        errors.add("password", too_long(password::MAX_LENGTH));
        None
    } else {
        Some(value)
    }
}

/// An optional text (bio, image): `""` is stored as NULL.
pub fn optional_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let value = value?.trim().to_owned();
    if value.is_empty() {
        return None;
    }
    bounded(errors, field, value, max)
}

/// Tags: trimmed, none blank or too long, duplicates dropped, sorted.
pub fn tags(errors: &mut FieldErrors, values: Vec<String>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let tag = value.trim().to_owned();
        if tag.is_empty() {
            errors.add("tagList", "can't contain blank tags");
        } else if tag.chars().count() > TAG_MAX {
            errors.add("tagList", format!("tags are at most {TAG_MAX} characters"));
        } else if tag.contains('\0') {
            errors.add("tagList", "can't contain NUL characters");
        } else {
            tags.push(tag);
        }
    }
    tags.sort();
    tags.dedup();
    if tags.len() > TAGS_PER_ARTICLE_MAX {
        errors.add("tagList", format!("at most {TAGS_PER_ARTICLE_MAX} tags"));
    }
    tags
}

/// An update of a required field: absent is "leave alone", null and blank
/// are errors.
pub fn changed_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<Option<String>>,
    max: usize,
) -> Option<String> {
    match value {
        None => None,
        Some(None) => {
            errors.add(field, NULL);
            None
        }
        Some(Some(text)) => required_text(errors, field, Some(text), max),
    }
}

/// A `limit` query parameter: default 20, from 1 to 100.
pub fn limit(errors: &mut FieldErrors, value: Option<&str>) -> i64 {
    match value.map(str::parse::<i64>) {
        None => 20,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => {
            errors.add("limit", "must be an integer from 1 to 100");
            20
        }
    }
}

/// An `offset` query parameter: default 0, not negative.
pub fn offset(errors: &mut FieldErrors, value: Option<&str>) -> i64 {
    match value.map(str::parse::<i64>) {
        None => 0,
        Some(Ok(offset)) if offset >= 0 => offset,
        Some(_) => {
            errors.add("offset", "must be an integer of at least 0");
            0
        }
    }
}

/// Deserializes a field that may be absent (`None`), null (`Some(None)`)
/// or set (`Some(Some(v))`); use with `#[serde(default)]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_offsets_outside_their_range_are_field_errors() {
        let mut errors = FieldErrors::default();
        assert_eq!(limit(&mut errors, None), 20);
        assert_eq!(limit(&mut errors, Some("100")), 100);
        assert_eq!(offset(&mut errors, Some("5")), 5);
        assert!(errors.is_empty());
        limit(&mut errors, Some("0"));
        limit(&mut errors, Some("abc"));
        offset(&mut errors, Some("-1"));
        offset(&mut errors, Some("99999999999999999999999"));
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!({
                "limit": ["must be an integer from 1 to 100", "must be an integer from 1 to 100"],
                "offset": ["must be an integer of at least 0", "must be an integer of at least 0"]
            })
        );
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_sorted() {
        let mut errors = FieldErrors::default();
        let tags = tags(
            &mut errors,
            vec![" rust ".into(), "actix".into(), "rust".into()],
        );
        assert_eq!(tags, ["actix", "rust"]);
        assert!(errors.is_empty());
    }

    #[test]
    fn usernames_refuse_spaces_and_slashes_but_take_unicode_letters() {
        let mut errors = FieldErrors::default();
        assert_eq!(
            username(&mut errors, Some("jörg_1".into())).as_deref(),
            Some("jörg_1")
        );
        assert!(errors.is_empty());
        assert!(username(&mut errors, Some("a b".into())).is_none());
        assert!(username(&mut errors, Some("a/b".into())).is_none());
        assert!(username(&mut errors, Some("x".repeat(65))).is_none());
        assert!(!errors.is_empty());
    }
}
