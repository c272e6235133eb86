//! The RealWorld API, end to end: each test gets its own server on its own
//! fresh database (`spawn_app`).

#[path = "../support/database.rs"]
mod database;
mod helpers;
#[path = "../support/http.rs"]
mod http;
#[path = "../support/raw_http.rs"]
mod raw_http;
// The API tests use its count check; the concurrent writers are for
// tests/processes.
#[allow(dead_code)]
#[path = "../support/tag_links.rs"]
mod tag_links;

mod articles;
mod comments;
mod headers;
mod hostile;
mod hostile_connections;
mod hostile_identity;
mod hostile_lists;
mod hostile_operators;
mod hostile_passwords;
mod hostile_protocol;
mod hostile_races;
mod hostile_session_ends;
mod hostile_sessions;
mod hostile_texts;
mod input;
mod kept_counts;
mod openapi;
mod pool_mode;
mod profiles;
mod queries;
mod sessions;
mod throttle;
mod user_updates;
mod users;
