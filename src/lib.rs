//! Conduit: the RealWorld API on actix-web, diesel-async and PostgreSQL,
//! with a schema built and evolved only by versioned migrations.

pub mod auth;
pub mod cli;
pub mod client_address;
pub mod client_faults;
pub mod commands;
pub mod config;
pub mod connections;
pub mod db;
pub mod domain;
pub mod error;
pub mod error_chain;
pub mod extract;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod schema;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod socket_deadlines;
pub mod startup;
pub mod state;
pub mod telemetry;
