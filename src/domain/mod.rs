//! Request input parsed into values that are valid by construction: a
//! handler gets a `NewUser` whose fields are all there and all valid, or
//! every field error of the request at once. The newtypes carry the rules.

pub mod articles;
mod field_errors;
pub mod identity;
pub mod page;
mod patch;
mod slug;
mod text;
pub mod users;

pub use field_errors::FieldErrors;
pub use patch::{Change, Patch};
pub use slug::Slug;

/// Why one field's value was refused: one message or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(Vec<String>);

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Self(vec![message])
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Self(vec![message.to_owned()])
    }
}

/// The field errors of a request: each field with the messages of its
/// refusal, the accepted fields (`None`) left out.
fn field_errors<const N: usize>(refusals: [(&str, Option<Invalid>); N]) -> FieldErrors {
    let mut errors = FieldErrors::default();
    for (field, refusal) in refusals {
        if let Some(Invalid(messages)) = refusal {
            errors.add_all(field, messages);
        }
    }
    errors
}
