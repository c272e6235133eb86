//! The bodies of the user routes. Passwords stay `SecretString` until the
//! domain type that checks them takes them, so no `Debug` shows one.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::Patch;

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserPayload {
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub(super) password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub(super) user: NewUserPayload,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginPayload {
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub(super) password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub(super) user: LoginPayload,
}

/// Absent fields are left alone; `bio` and `image` may be null (or `""`),
/// the others may not.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserUpdatePayload {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(super) username: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(super) email: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub(super) password: Patch<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(super) bio: Patch<String>,
    /// An absolute http or https URL.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "uri")]
    pub(super) image: Patch<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    pub(super) user: UserUpdatePayload,
}

/// A password out of its request type (which keeps it out of `Debug`),
/// for the domain type that checks it (whose `Debug` hides it too).
pub(super) fn exposed(password: Option<SecretString>) -> Option<String> {
    password.map(|password| password.expose_secret().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request type printed with `{:?}` (by a future log line, a panic
    /// message) shows no password.
    #[test]
    fn request_types_do_not_show_passwords_in_debug() {
        let secret = "hunter2-correct-horse";
        let registration: RegisterRequest = serde_json::from_value(serde_json::json!(
            {"user": {"username": "u", "email": "u@x.org", "password": secret}}
        ))
        .unwrap();
        let credentials: LoginRequest = serde_json::from_value(serde_json::json!(
            {"user": {"email": "u@x.org", "password": secret}}
        ))
        .unwrap();
        let change: UpdateUserRequest =
            serde_json::from_value(serde_json::json!({"user": {"password": secret}})).unwrap();
        for shown in [
            format!("{registration:?}"),
            format!("{credentials:?}"),
            format!("{change:?}"),
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(
            exposed(credentials.user.password).as_deref(),
            Some(secret),
            "the handler still gets it"
        );
    }
}
