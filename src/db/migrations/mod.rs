//! Migrations: the set the binary carries (or a directory of them, for
//! tests), what the database holds compared with it, and what can go wrong.
//! `runner` applies and reverts them under a PostgreSQL advisory lock so
//! that any number of replicas can boot at once (diesel's harness takes no
//! lock of its own; see `lock`); `at_boot` is what a booting server does.

mod at_boot;
mod checksums;
pub mod contract;
mod lock;
pub mod plan;
mod runner;
mod sources;

use std::path::PathBuf;

use diesel::dsl::sql;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::Bool;
use diesel::{ExpressionMethods, QueryDsl, QueryResult};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, FileBasedMigrations};
use serde::Serialize;

pub use at_boot::bring_schema_up_to_date;
pub use checksums::modified_migrations;
pub use runner::{redo_last, revert_last, run_pending, AppliedMigration, LockLimits, RunReport};
pub use sources::MigrationText;

/// The SQL of `migrations/`, compiled into the binary.
pub const EMBEDDED_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

type BlockingPgConnection = AsyncConnectionWrapper<AsyncPgConnection>;

diesel::table! {
    /// diesel's bookkeeping table, declared here because `schema.rs`
    /// leaves it out.
    __diesel_schema_migrations (version) {
        version -> VarChar,
        run_on -> Timestamp,
    }
}

/// Which migrations to apply: the embedded ones, or (for tests of
/// migration sets) a directory read at run time.
#[derive(Debug, Clone)]
pub enum MigrationSet {
    Embedded,
    Directory(PathBuf),
}

impl MigrationSource<Pg> for MigrationSet {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        match self {
            MigrationSet::Embedded => {
                <EmbeddedMigrations as MigrationSource<Pg>>::migrations(&EMBEDDED_MIGRATIONS)
            }
            MigrationSet::Directory(dir) => FileBasedMigrations::from_path(dir)?.migrations(),
        }
    }
}

/// One migration the binary knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMigration {
    pub version: String,
    pub name: String,
}

impl MigrationSet {
    /// Every migration of the set, oldest first.
    pub fn catalog(&self) -> Result<Vec<KnownMigration>, MigrationError> {
        let mut known: Vec<KnownMigration> = self
            .migrations()
            .map_err(MigrationError::Source)?
            .iter()
            .map(|m| KnownMigration {
                version: m.name().version().to_string(),
                name: m.name().to_string(),
            })
            .collect();
        known.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(known)
    }
}

impl MigrationError {
    fn failed(name: &str, source: BoxedError) -> Self {
        let hint = if source.to_string().contains("lock timeout") {
            " (a transaction held a lock on a table this migration changes; it gave up \
             after CONDUIT_MIGRATION_LOCK_TIMEOUT instead of blocking traffic behind it: retry \
             when that transaction has ended)"
        } else {
            ""
        };
        MigrationError::Failed {
            name: name.to_owned(),
            source: FailedStatement {
                error: source,
                hint,
            },
        }
    }
}

/// What a migration's SQL failed with, followed by what to do about it
/// when there is something to say. It stands in for the database's error
/// (whose message it shows, hint after it) in the chain.
#[derive(Debug)]
pub struct FailedStatement {
    error: BoxedError,
    hint: &'static str,
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
    #[error(
        "contract migration {name} not applied: after {waited_secs}s older releases are still \
         connected ({sessions}); it removes what they may read, so stop them first \
         (docs/migrations.md, \"Contract migrations\")"
    )]
    ContractBlocked {
        name: String,
        waited_secs: u64,
        sessions: String,
    },
}

/// What the database holds compared with what the binary knows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SchemaState {
    /// Applied versions, oldest first.
    pub applied: Vec<String>,
    /// Known versions not applied yet, oldest first.
    pub pending: Vec<String>,
    /// Applied versions this binary does not know (a newer binary ran).
    pub unknown: Vec<String>,
}

impl SchemaState {
    /// The newest applied version, if any.
    pub fn version(&self) -> Option<&str> {
        self.applied.last().map(String::as_str)
    }
}

/// Reads the applied versions without writing anything: safe for `/ready`
/// and `migrate status` on a database nobody migrated yet.
pub async fn schema_state(
    conn: &AsyncPgConnection,
    known: &[KnownMigration],
) -> QueryResult<SchemaState> {
    use diesel_async::RunQueryDsl;

    // Both statements go out together (diesel-async pipelines futures on a
    // shared connection), so boot and /ready wait for one round trip. The
    // read's error means something only if the table exists.
    let exists = diesel::select(sql::<Bool>(
        "to_regclass('__diesel_schema_migrations') IS NOT NULL",
    ))
    .get_result::<bool>(&mut &*conn);
    let versions = __diesel_schema_migrations::table
        .select(__diesel_schema_migrations::version)
        .order(__diesel_schema_migrations::version.asc())
        .load::<String>(&mut &*conn);
    let (exists, versions) = tokio::join!(exists, versions);
    let applied = if exists? { versions? } else { Vec::new() };
    let pending = known
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| m.version.clone())
        .collect();
    let unknown = applied
        .iter()
        .filter(|v| !known.iter().any(|m| &m.version == *v))
        .cloned()
        .collect();
    Ok(SchemaState {
        applied,
        pending,
        unknown,
    })
}
