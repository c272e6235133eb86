//! Tests that start processes: the real `conduit` binary, PostgreSQL
//! clusters of their own, `make`. One binary, so the crate is linked once.

#[path = "../support/mod.rs"]
mod support;

mod boot;
mod contract;
mod database_urls;
mod demo_account;
mod faults;
mod guard_rails;
mod hardening;
mod hashing_lanes;
mod identity_keys;
mod migration_faults;
mod migrations;
mod operators;
mod plan;
mod protocol;
mod request_log;
mod secrets;
mod tls;
mod topology;
mod workflow;
