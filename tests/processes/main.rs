//! Tests that start processes: the real `conduit` binary, PostgreSQL
//! clusters of their own, `make`. One binary, so the crate is linked once.

#[path = "../support/mod.rs"]
mod support;

mod boot;
mod contract;
mod faults;
mod hardening;
mod migrations;
mod plan;
mod secrets;
mod tls;
mod topology;
mod workflow;
