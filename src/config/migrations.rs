//! Settings of the migrations: whether boot applies them, how long they
//! wait for locks, which set runs and what is refused.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};

use super::durations::{between, LONGEST, LONGEST_PG_TIMEOUT, MILLISECOND};
use crate::db::migrations::{BootMigrations, LockLimits, MigrationSet};

#[derive(Debug, Clone, Args)]
pub struct MigrationArgs {
    /// Apply pending migrations before serving.
    #[arg(long, env = "CONDUIT_MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub migrate_on_start: bool,

    /// How long a migration run waits for another process's migration lock.
    #[arg(
        long,
        alias = "migration-lock-wait-secs",
        env = "CONDUIT_MIGRATION_LOCK_WAIT",
        default_value = "300s",
        value_parser = between(Duration::ZERO, LONGEST),
        global = true
    )]
    pub migration_lock_wait: Duration,

    /// How long a migration statement waits for a table lock before the
    /// migration fails (so it never blocks traffic queued behind it).
    #[arg(long, env = "CONDUIT_MIGRATION_LOCK_TIMEOUT", default_value = "10s",
          value_parser = between(MILLISECOND, LONGEST_PG_TIMEOUT), global = true)]
    pub migration_lock_timeout: Duration,

    /// How many times a migration that gave up on a table lock (see
    /// CONDUIT_MIGRATION_LOCK_TIMEOUT) is tried again, with exponential
    /// backoff and jitter; each failure names the sessions that blocked it.
    #[arg(long, env = "CONDUIT_MIGRATION_LOCK_RETRIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=20), global = true)]
    pub migration_lock_retries: u32,

    /// Apply pending migrations whose version sorts below the newest
    /// applied one (merged from a branch after it ran), in version order,
    /// instead of refusing to migrate.
    #[arg(long = "allow-out-of-order", env = "CONDUIT_MIGRATION_ALLOW_OUT_OF_ORDER", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), global = true)]
    pub allow_out_of_order: bool,

    /// Refuse to start when the database holds migrations this binary does
    /// not know, or applied migrations whose SQL has changed since.
    #[arg(long, env = "CONDUIT_STRICT_SCHEMA", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub strict_schema: bool,

    /// Use the migrations in this directory instead of the embedded ones.
    /// For testing migration sets; operators never need it.
    #[arg(long, hide = true, global = true)]
    pub migrations_dir: Option<PathBuf>,
}

impl MigrationArgs {
    pub fn set(&self) -> MigrationSet {
        match &self.migrations_dir {
            Some(dir) => MigrationSet::Directory(dir.clone()),
            None => MigrationSet::Embedded,
        }
    }

    pub fn lock_limits(&self) -> LockLimits {
        LockLimits {
            migration_lock_wait: self.migration_lock_wait,
            table_lock_timeout: self.migration_lock_timeout,
            table_lock_retries: self.migration_lock_retries,
        }
    }

    pub fn at_boot(&self) -> BootMigrations {
        BootMigrations {
            set: self.set(),
            migrate_on_start: self.migrate_on_start,
            strict_schema: self.strict_schema,
            allow_out_of_order: self.allow_out_of_order,
        }
    }
}
