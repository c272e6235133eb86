//! A field of a partial update, where absent and null mean different things.

use serde::{Deserialize, Deserializer};

use super::text::NULL;
use super::Invalid;

/// Absent (leave the field alone), null, or a value. Use with
/// `#[serde(default)]` so that an absent field is `Absent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| value.map_or(Patch::Null, Patch::Value))
    }
}

/// What an update does to a nullable field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Set it to null.
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

impl<T> Patch<T> {
    /// A change to a field that cannot be null: `None` leaves it alone.
    pub fn non_null<U>(
        self,
        parse: impl FnOnce(T) -> Result<U, Invalid>,
    ) -> Result<Option<U>, Invalid> {
        match self {
            Patch::Absent => Ok(None),
            Patch::Null => Err(NULL.into()),
            Patch::Value(value) => parse(value).map(Some),
        }
    }

    /// A change to a nullable field; `parse` answers `None` for a value
    /// that means "no value" (such as a blank text), which clears it too.
    pub fn nullable<U>(
        self,
        parse: impl FnOnce(T) -> Result<Option<U>, Invalid>,
    ) -> Result<Change<U>, Invalid> {
        match self {
            Patch::Absent => Ok(Change::Keep),
            Patch::Null => Ok(Change::Clear),
            Patch::Value(value) => Ok(parse(value)?.map_or(Change::Clear, Change::Set)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        bio: Patch<String>,
    }

    #[test]
    fn absent_null_and_a_value_are_told_apart() {
        let parse = |json| serde_json::from_str::<Body>(json).unwrap().bio;
        assert_eq!(parse("{}"), Patch::Absent);
        assert_eq!(parse(r#"{"bio": null}"#), Patch::Null);
        assert_eq!(parse(r#"{"bio": "x"}"#), Patch::Value("x".to_owned()));
    }
}
