//! Test tooling for the tests that run the real binary and PostgreSQL
//! servers of their own. The API tests use `database`, `http` and `tag_links` alone.

pub mod cluster;
pub mod database;
pub mod embedded;
pub mod http;
pub mod process;
// The process tests use part of it; the API tests the rest.
#[allow(dead_code)]
pub mod raw_http;
pub mod tag_links;
