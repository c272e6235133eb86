//! Test tooling shared by the two test binaries, which both include it
//! as `#[path = "../support/mod.rs"] mod support;`: tests/processes (the
//! real binary, PostgreSQL servers of their own) uses most of it, the API
//! tests `database`, `http`, `raw_http` and `tag_links`.

pub mod cluster;
pub mod database;
pub mod embedded;
pub mod http;
pub mod process;
// The process tests use part of it; the API tests the rest.
#[allow(dead_code)]
pub mod raw_http;
pub mod tag_links;
