//! Migrations: the set the binary carries (or a directory of them, for
//! tests), what the database holds compared with it, and what can go wrong.
//! `runner` applies and reverts them under a PostgreSQL advisory lock so
//! that any number of replicas can boot at once (diesel's harness takes no
//! lock of its own; see `lock`); `at_boot` is what a booting server does.

mod at_boot;
mod checksums;
pub mod contract;
mod drift;
mod guards;
mod invalid_indexes;
mod lock;
mod lock_waits;
pub mod plan;
mod runner;
mod scratch;
mod source_rules;
mod sources;
mod verify;

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

pub use at_boot::{bring_schema_up_to_date, BootMigrations, DriftCheck, SchemaAtBoot};
pub use checksums::modified_migrations;
pub use drift::Difference;
pub use guards::{refuse_when_strict, report_schema_problems};
pub use runner::{
    redo_last, repair_checksums, revert_last, run_pending, run_pending_keeping_connection,
    AppliedMigration, LockLimits, RepairedChecksum, RunOptions, RunReport,
};
pub use scratch::{ScratchDatabase, ScratchError};
pub use sources::MigrationText;
pub use verify::{baseline, verify, Baseline};

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
    /// Every migration of the set, oldest first. A directory with two
    /// migrations of one version is refused (the embedded set is checked
    /// by build.rs): diesel would run only one of them.
    pub fn catalog(&self) -> Result<Vec<KnownMigration>, MigrationError> {
        if let MigrationSet::Directory(dir) = self {
            let names: Vec<String> = std::fs::read_dir(dir)
                .map_err(|e| MigrationError::Source(Box::new(e)))?
                .filter_map(Result::ok)
                .filter(|e| e.path().join("up.sql").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if let Some((version, first, second)) =
                source_rules::shared_versions(&names).into_iter().next()
            {
                return Err(MigrationError::SharedVersion(
                    source_rules::shared_version_message(&version, &first, &second),
                ));
            }
        }
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
    fn is_lock_timeout(&self) -> bool {
        match self {
            MigrationError::Failed { source, .. } => {
                let message = source.error.to_string();
                message.contains("lock timeout") || message.contains("could not obtain lock")
            }
            _ => false,
        }
    }

    /// The same error, with what to do about it after the database's message.
    fn with_hint(self, hint: String) -> Self {
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

/// What the database holds compared with what the binary knows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SchemaState {
    /// Applied versions, oldest first.
    pub applied: Vec<String>,
    /// Known versions not applied yet, oldest first.
    pub pending: Vec<String>,
    /// Applied versions this binary does not know (a newer binary ran).
    pub unknown: Vec<String>,
    /// Pending versions that sort below the newest applied one (merged
    /// from a branch after a later migration ran).
    pub out_of_order: Vec<String>,
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
    let pending: Vec<String> = known
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| m.version.clone())
        .collect();
    let unknown = applied
        .iter()
        .filter(|v| !known.iter().any(|m| &m.version == *v))
        .cloned()
        .collect();
    let out_of_order = out_of_order(&applied, &pending);
    Ok(SchemaState {
        applied,
        pending,
        unknown,
        out_of_order,
    })
}

/// The pending versions below the newest applied one.
fn out_of_order(applied: &[String], pending: &[String]) -> Vec<String> {
    match applied.iter().max() {
        Some(newest) => pending.iter().filter(|v| *v < newest).cloned().collect(),
        None => Vec::new(),
    }
}
