//! Embedded migrations, applied under a PostgreSQL advisory lock so that any
//! number of replicas can boot at once: diesel's harness takes no lock of
//! its own (see `lock`). The lock holder re-reads what is pending once it
//! has the lock, since another replica may have done the work meanwhile.
//!
//! The harness is synchronous; it runs on a blocking thread through
//! `AsyncConnectionWrapper` (diesel-async's own `AsyncMigrationHarness`
//! panics on actix's current-thread runtime).

mod at_boot;
mod checksums;
mod lock;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::dsl::sql;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::Bool;
use diesel::{ExpressionMethods, QueryDsl, QueryResult};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{
    embed_migrations, EmbeddedMigrations, FileBasedMigrations, MigrationHarness,
};
use serde::Serialize;

pub use at_boot::bring_schema_up_to_date;
pub use checksums::modified_migrations;

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
            source,
            hint,
        }
    }
}

/// The error type of diesel's migration traits.
type BoxedError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("could not read the migrations: {0}")]
    Source(BoxedError),
    #[error("could not read migration {name}: {source}")]
    SourceFile {
        name: String,
        source: std::io::Error,
    },
    #[error("migration {name} failed: {source}{hint}")]
    Failed {
        name: String,
        source: BoxedError,
        hint: &'static str,
    },
    #[error("gave up after {waited_secs}s waiting for the migration lock{holder}")]
    LockTimeout { waited_secs: u64, holder: String },
    #[error("database error while migrating: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("could not read the applied migrations: {0}")]
    Bookkeeping(BoxedError),
    #[error("nothing to revert: no migration is applied")]
    NothingToRevert,
    #[error("migration {0} is applied but this binary does not know it, so it cannot revert it")]
    UnknownVersion(String),
    #[error("the migration task ended unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0} (CONDUIT_STRICT_SCHEMA is on)")]
    SchemaMismatch(String),
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

/// A migration applied by this run.
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    pub name: String,
    pub duration: Duration,
}

/// The result of [`run_pending`].
#[derive(Debug, Clone)]
pub struct RunReport {
    pub applied: Vec<AppliedMigration>,
    pub schema_version: Option<String>,
    /// Applied versions this binary does not know (a newer binary ran).
    pub unknown: Vec<String>,
    /// Applied versions whose up.sql changed since they ran.
    pub modified: Vec<String>,
}

/// Applies every pending migration of `set` on `conn`, under the lock.
/// Each migration runs in its own transaction (unless its metadata says
/// otherwise), so a failure leaves the database at the previous version.
pub async fn run_pending(
    conn: AsyncPgConnection,
    set: MigrationSet,
    limits: LockLimits,
) -> Result<RunReport, MigrationError> {
    under_lock(conn, limits, move |conn| apply_pending(conn, &set)).await
}

/// How long to wait, for the migration lock and for table locks.
#[derive(Debug, Clone, Copy)]
pub struct LockLimits {
    /// Waiting for another process's migration lock.
    pub migration_lock_wait: Duration,
    /// Waiting for a table lock inside a migration (PostgreSQL's
    /// `lock_timeout`): a migration queued behind a long transaction
    /// would block every query queued behind it.
    pub table_lock_timeout: Duration,
}

/// Reverts the newest applied migration, under the lock; returns its name.
pub async fn revert_last(
    conn: AsyncPgConnection,
    set: MigrationSet,
    limits: LockLimits,
) -> Result<String, MigrationError> {
    under_lock(conn, limits, move |conn| {
        let migration = newest_applied(conn, &set)?;
        revert(conn, migration.as_ref())
    })
    .await
}

/// Reverts the newest applied migration and applies it again, under the
/// lock; returns its name.
pub async fn redo_last(
    conn: AsyncPgConnection,
    set: MigrationSet,
    limits: LockLimits,
) -> Result<String, MigrationError> {
    under_lock(conn, limits, move |conn| {
        let migration = newest_applied(conn, &set)?;
        revert(conn, migration.as_ref())?;
        apply(conn, migration.as_ref(), &set.checksums()?)?;
        Ok(migration.name().to_string())
    })
    .await
}

/// Runs `work` on a blocking thread while holding the migration lock.
async fn under_lock<T, F>(
    conn: AsyncPgConnection,
    limits: LockLimits,
    work: F,
) -> Result<T, MigrationError>
where
    T: Send + 'static,
    F: FnOnce(&mut BlockingPgConnection) -> Result<T, MigrationError> + Send + 'static,
{
    // Created here, on the runtime, so the wrapper drives the connection
    // through this runtime's handle from the blocking thread.
    let mut conn = BlockingPgConnection::from(conn);
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;

        lock::acquire_lock(&mut conn, limits.migration_lock_wait)?;
        let outcome = conn
            .batch_execute(&format!(
                "SET lock_timeout = {}",
                limits.table_lock_timeout.as_millis()
            ))
            .map_err(MigrationError::from)
            .and_then(|()| work(&mut conn));
        // Closing the connection would release the lock too; unlocking
        // explicitly lets the next replica go on at once.
        if let Err(error) = lock::release_lock(&mut conn) {
            tracing::warn!(%error, "could not release the migration lock; it ends with the connection");
        }
        outcome
    })
    .await
    .map_err(MigrationError::Task)?
}

fn apply_pending(
    conn: &mut BlockingPgConnection,
    set: &MigrationSet,
) -> Result<RunReport, MigrationError> {
    let checksums = set.checksums()?;
    // Read under the lock: another replica may have applied them meanwhile.
    let pending = conn
        .pending_migrations(set.clone())
        .map_err(MigrationError::Bookkeeping)?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in &pending {
        applied.push(apply(conn, migration.as_ref(), &checksums)?);
    }
    let mut versions: Vec<String> = conn
        .applied_migrations()
        .map_err(MigrationError::Bookkeeping)?
        .iter()
        .map(|v| v.to_string())
        .collect();
    versions.reverse();
    let schema_version = versions.last().cloned();
    let modified = checksums::verify(conn, &checksums, &versions)?;
    let unknown: Vec<String> = versions
        .iter()
        .filter(|v| !checksums.contains_key(*v))
        .cloned()
        .collect();
    let shown = schema_version.as_deref().unwrap_or("none");
    if applied.is_empty() {
        tracing::info!(schema_version = shown, "schema up to date at {shown}");
    } else {
        tracing::info!(
            schema_version = shown,
            applied = applied.len(),
            "schema migrated to {shown}"
        );
    }
    Ok(RunReport {
        applied,
        schema_version,
        unknown,
        modified,
    })
}

/// Applies one migration and records its checksum.
fn apply(
    conn: &mut BlockingPgConnection,
    migration: &dyn Migration<Pg>,
    checksums: &BTreeMap<String, String>,
) -> Result<AppliedMigration, MigrationError> {
    let name = migration.name().to_string();
    let version = migration.name().version().to_string();
    let started = Instant::now();
    let run_and_record = |conn: &mut BlockingPgConnection| -> Result<(), MigrationError> {
        conn.run_migration(migration)
            .map_err(|e| MigrationError::failed(&name, e))?;
        if let Some(checksum) = checksums.get(&version) {
            checksums::record(conn, &version, checksum)?;
        }
        Ok(())
    };
    if migration.metadata().run_in_transaction() {
        // The checksum commits with the migration (diesel's own transaction
        // becomes a savepoint): never one without the other, and one
        // durable commit per migration instead of two.
        diesel::Connection::transaction(conn, run_and_record)?;
    } else {
        run_and_record(conn)?;
    }
    let duration = started.elapsed();
    tracing::info!(
        migration = %name,
        version = %migration.name().version(),
        duration_ms = duration.as_millis() as u64,
        "applied migration {name} in {} ms",
        duration.as_millis()
    );
    Ok(AppliedMigration { name, duration })
}

fn revert(
    conn: &mut BlockingPgConnection,
    migration: &dyn Migration<Pg>,
) -> Result<String, MigrationError> {
    let name = migration.name().to_string();
    let started = Instant::now();
    conn.revert_migration(migration)
        .map_err(|e| MigrationError::failed(&name, e))?;
    checksums::forget(conn, &migration.name().version().to_string())?;
    tracing::info!(
        migration = %name,
        duration_ms = started.elapsed().as_millis() as u64,
        "reverted migration {name}"
    );
    Ok(name)
}

fn newest_applied(
    conn: &mut BlockingPgConnection,
    set: &MigrationSet,
) -> Result<Box<dyn Migration<Pg>>, MigrationError> {
    let applied = conn
        .applied_migrations()
        .map_err(MigrationError::Bookkeeping)?;
    let newest = applied.first().ok_or(MigrationError::NothingToRevert)?;
    set.migrations()
        .map_err(MigrationError::Source)?
        .into_iter()
        .find(|m| m.name().version() == *newest)
        .ok_or_else(|| MigrationError::UnknownVersion(newest.to_string()))
}
