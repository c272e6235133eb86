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

impl<T> Patch<T> {
    /// A change to a field that cannot be null: `None` leaves it alone.
    pub fn required<U>(
        self,
        parse: impl FnOnce(T) -> Result<U, Invalid>,
    ) -> Result<Option<U>, Invalid> {
        match self {
            Patch::Absent => Ok(None),
            Patch::Null => Err(NULL.into()),
            Patch::Value(value) => parse(value).map(Some),
        }
    }

    /// A change to a nullable field: `None` leaves it alone, `Some(None)`
    /// clears it.
    pub fn nullable<U>(
        self,
        parse: impl FnOnce(T) -> Result<Option<U>, Invalid>,
    ) -> Result<Option<Option<U>>, Invalid> {
        match self {
            Patch::Absent => Ok(None),
            Patch::Null => Ok(Some(None)),
            Patch::Value(value) => parse(value).map(Some),
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
