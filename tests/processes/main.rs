//! Tests that start processes: the real `conduit` binary, PostgreSQL
//! clusters of their own, `make`. One binary, so the crate is linked once.

#[path = "../support/mod.rs"]
mod support;

mod boot;
mod contract;
mod demo_account;
mod faults;
mod guard_rails;
mod hardening;
mod hashing_lanes;
mod identity_keys;
mod migrations;
mod operators;
mod plan;
mod protocol;
mod secrets;
mod tls;
mod topology;
mod workflow;
