//! Why a migration command failed, and the database's message of a
//! failed migration with what to do about it.

use super::contract;

impl MigrationError {
    pub(super) fn failed(name: &str, source: BoxedError) -> Self {
        MigrationError::Failed {
            name: name.to_owned(),
            source: FailedStatement {
                error: source,
                hint: String::new(),
            },
        }
    }

    /// Whether this is a migration statement that gave up on
    /// `lock_timeout` (SQLSTATE 55P03, lock_not_available). diesel keeps
    /// no SQLSTATE for it, so its message (in the server's
    /// `lc_messages`, English by default) is what tells.
    pub(super) fn is_lock_timeout(&self) -> bool {
        match self {
            MigrationError::Failed { source, .. } => {
                let message = source.error.to_string();
                message.contains("lock timeout") || message.contains("could not obtain lock")
            }
            _ => false,
        }
    }

    /// The same error, with what to do about it after the database's message.
    pub(super) fn with_hint(self, hint: String) -> Self {
        match self {
            MigrationError::Failed { name, source } => MigrationError::Failed {
                name,
                source: FailedStatement {
                    error: source.error,
                    hint,
                },
            },
            other => other,
        }
    }
}

/// What a migration's SQL failed with, followed by what to do about it
/// when there is something to say. It stands in for the database's error
/// (whose message it shows, hint after it) in the chain.
#[derive(Debug)]
pub struct FailedStatement {
    error: BoxedError,
    hint: String,
}

impl std::fmt::Display for FailedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.error, self.hint)
    }
}

impl std::error::Error for FailedStatement {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// The error type of diesel's migration traits.
type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// Why a migration command failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("could not read the migrations")]
    Source(#[source] BoxedError),
    #[error("could not read migration {name}")]
    SourceFile {
        name: String,
        source: std::io::Error,
    },
    #[error("migration {name} failed")]
    Failed {
        name: String,
        source: FailedStatement,
    },
    #[error("gave up after {waited_secs}s waiting for the migration lock{holder}")]
    LockTimeout { waited_secs: u64, holder: String },
    #[error("database error while migrating")]
    Database(#[from] diesel::result::Error),
    #[error("could not read the applied migrations")]
    Bookkeeping(#[source] BoxedError),
    #[error("nothing to revert: no migration is applied")]
    NothingToRevert,
    #[error("migration {0} is applied but this binary does not know it, so it cannot revert it")]
    UnknownVersion(String),
    #[error("the migration task ended unexpectedly")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0} (CONDUIT_STRICT_SCHEMA is on)")]
    SchemaMismatch(String),
    #[error("{0}")]
    SharedVersion(String),
    #[error("cannot verify: {0}")]
    CannotVerify(String),
    #[error("refusing to baseline: {0}")]
    CannotBaseline(String),
    #[error("could not build a scratch database to compare the schema with (the migration role needs CREATEDB): {0}")]
    Scratch(String),
    #[error(
        "refusing to migrate: {} sort{} below {newest}, the newest applied migration (merged \
         after it ran); give {} a version above {newest} (rename the directory), or apply in \
         version order with --allow-out-of-order (CONDUIT_MIGRATION_ALLOW_OUT_OF_ORDER=true)",
        migrations.join(", "),
        if migrations.len() == 1 { "s" } else { "" },
        if migrations.len() == 1 { "it" } else { "them" }
    )]
    OutOfOrder {
        migrations: Vec<String>,
        newest: String,
    },
    #[error(
        "contract migration {} not applied: after {}s older releases are still connected \
         ({}); it removes what they may read, so stop them first (docs/migrations.md, \
         \"Contract migrations\")",
        .0.name, .0.waited_secs, .0.sessions
    )]
    ContractBlocked(contract::Blocked),
    #[error(
        "migration {} not reverted: after {}s releases that use it are still connected ({}); \
         its down.sql removes what they read, so roll them back to a release before it first \
         (docs/migrations.md, \"Reverting\")",
        .0.name, .0.waited_secs, .0.sessions
    )]
    RevertBlocked(contract::Blocked),
}
