//! The RealWorld API, end to end: each test gets its own server on its own
//! fresh database (`spawn_app`).

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod articles;
mod comments;
mod hostile;
mod input;
mod openapi;
mod profiles;
mod queries;
mod sessions;
mod users;
