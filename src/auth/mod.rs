//! Credentials and what guards them: password hashing on its own threads,
//! opaque session tokens, the login and registration throttle, the demo
//! account's refusal. The HTTP side (the `AuthUser` extractor, writes made
//! as a session) is in `crate::extract`.

pub mod demo;
pub mod hashing;
pub mod password;
pub mod settings;
pub mod sign_in;
pub mod throttle;
pub mod token;
