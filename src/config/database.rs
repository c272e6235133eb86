//! Settings of the connection to PostgreSQL and of the requests' pool.

use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::durations::{between, LONGEST, LONGEST_PG_TIMEOUT, MILLISECOND};
use super::{invalid, ConfigError};
use crate::db::endpoint::Endpoint;
use crate::db::migrations::LockLimits;
use crate::db::settings::{DatabaseSettings, PoolMode, PoolRecycling};

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://user:password@localhost:5432/conduit.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = secret)]
    pub database_url: Option<SecretString>,

    /// PostgreSQL URL for migrations (default: DATABASE_URL). Migrations
    /// take a session advisory lock and run DDL: behind PgBouncer in
    /// transaction pooling, point this at PostgreSQL directly.
    #[arg(
        long,
        env = "CONDUIT_MIGRATION_DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_parser = secret
    )]
    pub migration_database_url: Option<SecretString>,

    /// How long boot waits for the database to answer.
    #[arg(
        long,
        alias = "db-wait-secs",
        env = "CONDUIT_DB_WAIT",
        default_value = "30s",
        value_parser = between(Duration::ZERO, LONGEST),
        global = true
    )]
    pub db_wait: Duration,

    /// Maximum number of pooled connections, at most 10000 (each is a
    /// PostgreSQL backend: far fewer serve best, docs/benchmarks.md).
    #[arg(long, env = "CONDUIT_DB_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000), global = true)]
    pub db_pool_size: u32,

    /// How long a request waits for a pooled connection before answering 503.
    #[arg(
        long,
        env = "CONDUIT_DB_ACQUIRE_TIMEOUT",
        default_value = "5s",
        value_parser = between(MILLISECOND, LONGEST),
        global = true
    )]
    pub db_acquire_timeout: Duration,

    /// verified or fast: whether a checkout first runs `SELECT 1`.
    #[arg(long, env = "CONDUIT_DB_RECYCLE", value_enum, default_value_t = PoolRecycling::Fast, global = true)]
    pub db_recycle: PoolRecycling,

    /// session or transaction: `transaction` behind PgBouncer (or another
    /// pooler) in transaction pooling mode.
    #[arg(long, env = "CONDUIT_DB_POOL_MODE", value_enum, default_value_t = PoolMode::Session, global = true)]
    pub db_pool_mode: PoolMode,

    /// Longest a request's SQL statement may run before it is cancelled
    /// (503). Not 0, which PostgreSQL reads as "no limit".
    #[arg(long, env = "CONDUIT_DB_STATEMENT_TIMEOUT", default_value = "5s",
          value_parser = between(MILLISECOND, LONGEST_PG_TIMEOUT), global = true)]
    pub db_statement_timeout: Duration,
}

impl DatabaseArgs {
    /// The endpoints and limits of the database layer; `application_name`
    /// names this release on every connection.
    pub fn settings(
        &self,
        migration_locks: LockLimits,
        application_name: String,
    ) -> Result<DatabaseSettings, ConfigError> {
        let raw = given(&self.database_url).ok_or(ConfigError::MissingDatabaseUrl)?;
        let requests = Endpoint::parse(raw)?;
        let migrations = match given(&self.migration_database_url) {
            Some(raw) => {
                Endpoint::parse(raw).map_err(|e| ConfigError::MigrationUrl(Box::new(e.into())))?
            }
            // Behind a transaction pooler the session advisory lock and
            // the DDL of migrations cannot work: no silent fallback.
            None if self.db_pool_mode == PoolMode::Transaction => {
                return Err(invalid(
                    "CONDUIT_MIGRATION_DATABASE_URL",
                    "must be set when CONDUIT_DB_POOL_MODE=transaction: migrations need a \
                     session of their own (an advisory lock, DDL), so point it at PostgreSQL \
                     directly, not at the pooler",
                ));
            }
            None => requests.clone(),
        };
        Ok(DatabaseSettings {
            requests,
            migrations,
            wait: self.db_wait,
            pool_size: self.db_pool_size,
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: self.db_statement_timeout,
            recycling: self.db_recycle,
            pool_mode: self.db_pool_mode,
            migration_locks,
            application_name,
        })
    }
}

/// A URL that was given and is not blank.
fn given(url: &Option<SecretString>) -> Option<&str> {
    url.as_ref()
        .map(ExposeSecret::expose_secret)
        .filter(|url| !url.trim().is_empty())
}

/// A value kept out of `Debug` (the database URL carries a password).
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}
