//! Test tooling for the tests that run the real binary and PostgreSQL
//! servers of their own. The API tests use `database`, `http` and `tag_links` alone.

pub mod cluster;
pub mod database;
pub mod http;
pub mod process;
pub mod tag_links;
