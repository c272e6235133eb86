//! The database layer's settings, as `config` hands them over: the
//! endpoints, the pool's limits and the migrations' lock limits.

use std::time::Duration;

use clap::ValueEnum;

use super::endpoint::Endpoint;
use super::migrations::LockLimits;

/// How a pooled connection is checked before a request gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolRecycling {
    /// A `SELECT 1` round trip on every checkout: even a connection that
    /// died silently (no FIN reached us) is replaced before a request uses it.
    Verified,
    /// No round trip (the default): a connection the server closed (restart,
    /// failover, idle timeout) is still noticed and replaced; only a silently
    /// dead one fails its first request with 503, and every request saves a
    /// round trip (docs/benchmarks.md has the figures).
    Fast,
}

/// What sits between the pool and PostgreSQL, which decides how a
/// request's statements must be grouped (docs/deploying.md, "PgBouncer").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolMode {
    /// PostgreSQL itself, or a pooler in session mode (the default): a
    /// connection is one server session for as long as it lives.
    Session,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`):
    /// the server session is ours only inside a transaction, so every
    /// request runs its statements in one, with `statement_timeout` set
    /// for that transaction and no statement kept prepared beyond it.
    Transaction,
}

/// Every setting of the database layer.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// The requests' pool connects here (possibly through PgBouncer).
    pub requests: Endpoint,
    /// Migrations connect here: a real session (the advisory lock, DDL).
    pub migrations: Endpoint,
    pub wait: Duration,
    pub pool_size: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub recycling: PoolRecycling,
    pub pool_mode: PoolMode,
    pub migration_locks: LockLimits,
    /// `conduit@<newest known migration>` on every connection (pool and
    /// migrations): which release holds it (db/application_name.rs).
    pub application_name: String,
}
