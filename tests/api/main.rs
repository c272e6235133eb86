//! The RealWorld API, end to end: each test gets its own server on its own
//! fresh database (`spawn_app`).

// The shared test tooling, included as tests/processes includes it. The
// API tests use `database`, `http`, `raw_http` and `tag_links`'s count
// check; the rest (clusters, processes, concurrent writers) is theirs.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod articles;
mod comments;
mod headers;
mod helpers;
mod hostile;
mod hostile_connections;
mod hostile_identity;
mod hostile_lists;
mod hostile_operators;
mod hostile_passwords;
mod hostile_protocol;
mod hostile_races;
mod hostile_session_ends;
mod hostile_session_writes;
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
