//! What a request's input got wrong, field by field. It is also the body of
//! a 422 (under `errors`), hence the serde and OpenAPI derives.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Messages per field, as the spec's GenericErrorModel has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    /// Adds every message of `messages` to `field` (none is fine).
    pub fn add_all<M: Into<String>>(&mut self, field: &str, messages: impl IntoIterator<Item = M>) {
        for message in messages {
            self.add(field, message);
        }
    }
}
