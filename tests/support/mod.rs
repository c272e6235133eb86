//! Test tooling for the tests that run the real binary and PostgreSQL
//! servers of their own. The API tests use `database` and `http` alone.

pub mod cluster;
pub mod database;
pub mod http;
pub mod process;
