//! Embedded migrations, applied under a PostgreSQL advisory lock so that any
//! number of replicas can boot at once.
//!
//! diesel's harness takes no lock of its own. Waiting in a blocking
//! `pg_advisory_lock` would hold a snapshot open, and a `CREATE INDEX
//! CONCURRENTLY` run by the lock holder waits for every older snapshot: a
//! deadlock. So waiters poll `pg_try_advisory_lock` with no statement open
//! in between, and the holder re-reads what is pending once it has the lock.
//!
//! The harness is synchronous; it runs on a blocking thread through
//! `AsyncConnectionWrapper` (diesel-async's own `AsyncMigrationHarness`
//! panics on actix's current-thread runtime).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::dsl::sql;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Integer, Text};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryResult, QueryableByName};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{
    embed_migrations, EmbeddedMigrations, FileBasedMigrations, MigrationHarness,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/embedded_up_sql.rs"));

/// The SQL of `migrations/`, compiled into the binary.
pub const EMBEDDED_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a waiting process sleeps between two tries for the lock.
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a waiting process says that it is still waiting.
const LOCK_WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// The advisory lock key: fixed per database, so replicas of one database
/// exclude each other and other databases on the server are not affected.
const LOCK_KEY: &str = "hashtextextended('conduit:migrations:' || current_database(), 0)";

type BlockingPgConnection = AsyncConnectionWrapper<AsyncPgConnection>;

diesel::table! {
    /// diesel's bookkeeping table, declared here because `schema.rs`
    /// leaves it out.
    __diesel_schema_migrations (version) {
        version -> VarChar,
        run_on -> Timestamp,
    }
}

diesel::table! {
    /// The SHA-256 of each applied migration's up.sql. Ours, created on
    /// first use the way diesel creates its own table, so that an edit to
    /// an applied migration is noticed.
    __conduit_migration_checksums (version) {
        version -> VarChar,
        up_sql_sha256 -> Text,
        recorded_at -> Timestamptz,
    }
}

const CREATE_CHECKSUMS_TABLE: &str = "CREATE TABLE IF NOT EXISTS __conduit_migration_checksums (\
     version VARCHAR(50) PRIMARY KEY NOT NULL, \
     up_sql_sha256 TEXT NOT NULL, \
     recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The version part of a migration name: "001" of "001_initial_schema".
fn version_of(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
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
            .map_err(|e| MigrationError::Source(e.to_string()))?
            .iter()
            .map(|m| KnownMigration {
                version: m.name().version().to_string(),
                name: m.name().to_string(),
            })
            .collect();
        known.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(known)
    }

    /// The SHA-256 of every migration's up.sql, by version.
    pub fn checksums(&self) -> Result<BTreeMap<String, String>, MigrationError> {
        match self {
            MigrationSet::Embedded => Ok(EMBEDDED_UP_SQL
                .iter()
                .map(|(name, sql)| (version_of(name).to_owned(), sha256_hex(sql)))
                .collect()),
            MigrationSet::Directory(dir) => self
                .catalog()?
                .into_iter()
                .map(|m| {
                    let sql = std::fs::read_to_string(dir.join(&m.name).join("up.sql"))
                        .map_err(|e| MigrationError::Source(format!("{}: {e}", m.name)))?;
                    Ok((m.version, sha256_hex(&sql)))
                })
                .collect(),
        }
    }
}

/// Applied versions whose recorded checksum differs from the binary's
/// up.sql, and applied versions with no checksum recorded yet.
fn compare_checksums(
    current: &BTreeMap<String, String>,
    recorded: &HashMap<String, String>,
    applied: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut modified = Vec::new();
    let mut unrecorded = Vec::new();
    for version in applied {
        match (current.get(version), recorded.get(version)) {
            (Some(now), Some(then)) if now != then => modified.push(version.clone()),
            (Some(_), None) => unrecorded.push(version.clone()),
            _ => {}
        }
    }
    (modified, unrecorded)
}

/// Applied migrations whose up.sql changed since they ran, read-only (for
/// `migrate status` and boots that do not migrate).
pub async fn modified_migrations(
    conn: &mut AsyncPgConnection,
    set: &MigrationSet,
    applied: &[String],
) -> Result<Vec<String>, MigrationError> {
    use diesel_async::RunQueryDsl;

    let exists: bool = diesel::select(sql::<Bool>(
        "to_regclass('__conduit_migration_checksums') IS NOT NULL",
    ))
    .get_result(conn)
    .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let recorded: HashMap<String, String> = __conduit_migration_checksums::table
        .select((
            __conduit_migration_checksums::version,
            __conduit_migration_checksums::up_sql_sha256,
        ))
        .load::<(String, String)>(conn)
        .await?
        .into_iter()
        .collect();
    Ok(compare_checksums(&set.checksums()?, &recorded, applied).0)
}

impl MigrationError {
    fn failed(name: &str, reason: String) -> Self {
        let reason = if reason.contains("lock timeout") {
            format!(
                "{reason} (a transaction held a lock on a table this migration changes; it gave up \
                 after CONDUIT_MIGRATION_LOCK_TIMEOUT instead of blocking traffic behind it: retry \
                 when that transaction has ended)"
            )
        } else {
            reason
        };
        MigrationError::Failed {
            name: name.to_owned(),
            reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("could not read the migrations: {0}")]
    Source(String),
    #[error("migration {name} failed: {reason}")]
    Failed { name: String, reason: String },
    #[error("gave up after {waited_secs}s waiting for the migration lock{holder}")]
    LockTimeout { waited_secs: u64, holder: String },
    #[error("database error while migrating: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("could not read the applied migrations: {0}")]
    Bookkeeping(String),
    #[error("nothing to revert: no migration is applied")]
    NothingToRevert,
    #[error("migration {0} is applied but this binary does not know it, so it cannot revert it")]
    UnknownVersion(String),
    #[error("the migration task ended unexpectedly: {0}")]
    Task(String),
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
    conn: &mut AsyncPgConnection,
    known: &[KnownMigration],
) -> QueryResult<SchemaState> {
    use diesel_async::RunQueryDsl;

    let bookkeeping_exists: bool = diesel::select(sql::<Bool>(
        "to_regclass('__diesel_schema_migrations') IS NOT NULL",
    ))
    .get_result(conn)
    .await?;
    let applied: Vec<String> = if bookkeeping_exists {
        __diesel_schema_migrations::table
            .select(__diesel_schema_migrations::version)
            .order(__diesel_schema_migrations::version.asc())
            .load(conn)
            .await?
    } else {
        Vec::new()
    };
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

        acquire_lock(&mut conn, limits.migration_lock_wait)?;
        let outcome = conn
            .batch_execute(&format!(
                "SET lock_timeout = {}",
                limits.table_lock_timeout.as_millis()
            ))
            .map_err(MigrationError::from)
            .and_then(|()| work(&mut conn));
        // Closing the connection would release the lock too; unlocking
        // explicitly lets the next replica go on at once.
        if let Err(error) = release_lock(&mut conn) {
            tracing::warn!(%error, "could not release the migration lock; it ends with the connection");
        }
        outcome
    })
    .await
    .map_err(|e| MigrationError::Task(e.to_string()))?
}

#[derive(QueryableByName)]
struct LockHolder {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    application_name: String,
}

fn acquire_lock(
    conn: &mut BlockingPgConnection,
    lock_wait: Duration,
) -> Result<(), MigrationError> {
    use diesel::RunQueryDsl;

    let started = Instant::now();
    let mut last_log: Option<Instant> = None;
    loop {
        let locked: bool =
            diesel::select(sql::<Bool>(&format!("pg_try_advisory_lock({LOCK_KEY})")))
                .get_result(conn)?;
        if locked {
            if last_log.is_some() {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "took the migration lock"
                );
            }
            return Ok(());
        }
        if started.elapsed() >= lock_wait {
            let holder = lock_holder(conn)
                .map(|h| format!(" (held by pid {}, {:?})", h.pid, h.application_name))
                .unwrap_or_default();
            return Err(MigrationError::LockTimeout {
                waited_secs: started.elapsed().as_secs(),
                holder,
            });
        }
        if last_log.is_none_or(|at| at.elapsed() >= LOCK_WAIT_LOG_INTERVAL) {
            match lock_holder(conn) {
                Some(holder) => tracing::info!(
                    holder_pid = holder.pid,
                    holder_application = %holder.application_name,
                    "waiting for the migration lock held by another process"
                ),
                None => tracing::info!("waiting for the migration lock"),
            }
            last_log = Some(Instant::now());
        }
        std::thread::sleep(LOCK_POLL_INTERVAL);
    }
}

/// Who holds the migration lock, if anyone (best effort, for the logs).
fn lock_holder(conn: &mut BlockingPgConnection) -> Option<LockHolder> {
    use diesel::RunQueryDsl;

    // A bigint advisory key is stored as classid (high half) and objid
    // (low half), with objsubid 1.
    diesel::sql_query(format!(
        "SELECT a.pid, coalesce(a.application_name, '') AS application_name \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND ((l.classid::bigint << 32) | l.objid::bigint) = {LOCK_KEY} \
         LIMIT 1"
    ))
    .get_result::<LockHolder>(conn)
    .optional()
    .ok()
    .flatten()
}

fn release_lock(conn: &mut BlockingPgConnection) -> QueryResult<bool> {
    use diesel::RunQueryDsl;

    diesel::select(sql::<Bool>(&format!("pg_advisory_unlock({LOCK_KEY})"))).get_result(conn)
}

fn bookkeeping(error: impl std::fmt::Display) -> MigrationError {
    MigrationError::Bookkeeping(error.to_string())
}

fn apply_pending(
    conn: &mut BlockingPgConnection,
    set: &MigrationSet,
) -> Result<RunReport, MigrationError> {
    use diesel::RunQueryDsl;

    diesel::sql_query(CREATE_CHECKSUMS_TABLE).execute(conn)?;
    let checksums = set.checksums()?;
    // Read under the lock: another replica may have applied them meanwhile.
    let pending = conn.pending_migrations(set.clone()).map_err(bookkeeping)?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in &pending {
        applied.push(apply(conn, migration.as_ref(), &checksums)?);
    }
    let mut versions: Vec<String> = conn
        .applied_migrations()
        .map_err(bookkeeping)?
        .iter()
        .map(|v| v.to_string())
        .collect();
    versions.reverse();
    let schema_version = versions.last().cloned();
    let recorded: HashMap<String, String> = __conduit_migration_checksums::table
        .select((
            __conduit_migration_checksums::version,
            __conduit_migration_checksums::up_sql_sha256,
        ))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let (modified, unrecorded) = compare_checksums(&checksums, &recorded, &versions);
    // Applied before checksums were kept (or by diesel_cli): trust them now.
    for version in &unrecorded {
        record_checksum(conn, version, &checksums[version])?;
    }
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

fn record_checksum(
    conn: &mut BlockingPgConnection,
    version: &str,
    checksum: &str,
) -> Result<(), MigrationError> {
    use diesel::RunQueryDsl;

    diesel::insert_into(__conduit_migration_checksums::table)
        .values((
            __conduit_migration_checksums::version.eq(version),
            __conduit_migration_checksums::up_sql_sha256.eq(checksum),
        ))
        .on_conflict(__conduit_migration_checksums::version)
        .do_update()
        .set((
            __conduit_migration_checksums::up_sql_sha256.eq(checksum),
            __conduit_migration_checksums::recorded_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Applies one migration and records its checksum.
fn apply(
    conn: &mut BlockingPgConnection,
    migration: &dyn Migration<Pg>,
    checksums: &BTreeMap<String, String>,
) -> Result<AppliedMigration, MigrationError> {
    let name = migration.name().to_string();
    let started = Instant::now();
    conn.run_migration(migration)
        .map_err(|e| MigrationError::failed(&name, e.to_string()))?;
    let duration = started.elapsed();
    let version = migration.name().version().to_string();
    if let Some(checksum) = checksums.get(&version) {
        record_checksum(conn, &version, checksum)?;
    }
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
        .map_err(|e| MigrationError::failed(&name, e.to_string()))?;
    {
        use diesel::RunQueryDsl;
        diesel::sql_query(CREATE_CHECKSUMS_TABLE).execute(conn)?;
        diesel::delete(__conduit_migration_checksums::table.filter(
            __conduit_migration_checksums::version.eq(migration.name().version().to_string()),
        ))
        .execute(conn)?;
    }
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
    let applied = conn.applied_migrations().map_err(bookkeeping)?;
    let newest = applied.first().ok_or(MigrationError::NothingToRevert)?;
    set.migrations()
        .map_err(|e| MigrationError::Source(e.to_string()))?
        .into_iter()
        .find(|m| m.name().version() == *newest)
        .ok_or_else(|| MigrationError::UnknownVersion(newest.to_string()))
}
