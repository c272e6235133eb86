//! Applying and reverting migrations under the migration lock. The lock
//! holder re-reads what is pending once it has the lock, since another
//! replica may have done the work meanwhile.
//!
//! The harness is synchronous; it runs on a blocking thread through
//! `AsyncConnectionWrapper` (diesel-async's own `AsyncMigrationHarness`
//! panics on actix's current-thread runtime).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;

use super::lock_waits::{self, LockWatch};
use super::{
    checksums, contract, invalid_indexes, lock, BlockingPgConnection, MigrationError, MigrationSet,
};
use crate::db::endpoint::Endpoint;

pub use super::checksums::RepairedChecksum;

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
/// Refuses, before applying anything, pending migrations that sort below
/// the newest applied one unless `options` allow them.
pub async fn run_pending(
    conn: AsyncPgConnection,
    set: MigrationSet,
    options: RunOptions,
) -> Result<RunReport, MigrationError> {
    Ok(run_pending_keeping_connection(conn, set, options).await?.0)
}

/// [`run_pending`], handing the connection back for what comes after.
pub async fn run_pending_keeping_connection(
    conn: AsyncPgConnection,
    set: MigrationSet,
    options: RunOptions,
) -> Result<(RunReport, AsyncPgConnection), MigrationError> {
    let limits = options.limits;
    let runtime = tokio::runtime::Handle::current();
    under_lock(conn, limits, move |conn| {
        apply_pending(conn, &set, &options, &runtime)
    })
    .await
}

/// How a run applies migrations.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub limits: LockLimits,
    /// Apply pending migrations below the newest applied one, in version
    /// order, instead of refusing.
    pub allow_out_of_order: bool,
    /// Where the watcher that names the sessions blocking a migration
    /// connects (the migration endpoint); `None`: they go unnamed.
    pub watch_from: Option<Endpoint>,
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
    /// How many times a migration that gave up on a table lock is tried
    /// again, after a growing pause during which it holds no table lock.
    pub table_lock_retries: u32,
}

/// Reverts the newest applied migration, under the lock; returns its name.
pub async fn revert_last(
    conn: AsyncPgConnection,
    set: MigrationSet,
    limits: LockLimits,
) -> Result<String, MigrationError> {
    under_lock(conn, limits, move |conn| {
        let migration = newest_applied(conn, &set)?;
        revert(conn, migration.as_ref(), limits)
    })
    .await
    .map(|(name, _)| name)
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
        revert(conn, migration.as_ref(), limits)?;
        apply(
            conn,
            migration.as_ref(),
            &set.checksums()?,
            Durability::Flush,
        )?;
        Ok(migration.name().to_string())
    })
    .await
    .map(|(name, _)| name)
}

/// Re-records, under the lock, the checksums of applied migrations whose
/// up.sql changed since they ran (a comment, a reformat: the operator
/// vouches that the schema is what the new text makes); returns them.
pub async fn repair_checksums(
    conn: AsyncPgConnection,
    set: MigrationSet,
    limits: LockLimits,
) -> Result<Vec<RepairedChecksum>, MigrationError> {
    under_lock(conn, limits, move |conn| {
        let applied = applied_oldest_first(conn)?;
        checksums::repair(conn, &set.checksums()?, &applied)
    })
    .await
    .map(|(repaired, _)| repaired)
}

/// Records the migrations of `set` with `versions` as applied, with their
/// checksums, in one transaction and without running them (a baseline),
/// under the lock, once more making sure that no history exists.
pub(super) async fn record_without_running(
    conn: AsyncPgConnection,
    set: MigrationSet,
    versions: Vec<String>,
    limits: LockLimits,
) -> Result<(), MigrationError> {
    under_lock(conn, limits, move |conn| {
        use diesel::{ExpressionMethods, RunQueryDsl};

        // Also creates diesel's table, as its harness does on first use.
        let applied: Vec<String> = conn
            .applied_migrations()
            .map_err(MigrationError::Bookkeeping)?
            .iter()
            .map(|v| v.to_string())
            .collect();
        super::verify::refuse_history(&applied)?;
        let checksums = set.checksums()?;
        diesel::Connection::transaction(conn, |conn| {
            for version in &versions {
                diesel::insert_into(super::__diesel_schema_migrations::table)
                    .values(super::__diesel_schema_migrations::version.eq(version))
                    .execute(conn)?;
                if let Some(checksum) = checksums.get(version) {
                    checksums::record(conn, version, checksum)?;
                }
            }
            Ok::<_, MigrationError>(())
        })
    })
    .await
    .map(drop)
}

/// Runs `work` on a blocking thread while holding the migration lock;
/// hands the connection back with its result.
async fn under_lock<T, F>(
    conn: AsyncPgConnection,
    limits: LockLimits,
    work: F,
) -> Result<(T, AsyncPgConnection), MigrationError>
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
        outcome.map(|done| (done, conn.into_inner()))
    })
    .await
    .map_err(MigrationError::Task)?
}

fn apply_pending(
    conn: &mut BlockingPgConnection,
    set: &MigrationSet,
    options: &RunOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<RunReport, MigrationError> {
    use diesel::connection::SimpleConnection;

    let checksums = set.checksums()?;
    // Read under the lock: another replica may have applied them meanwhile.
    let pending = conn
        .pending_migrations(set.clone())
        .map_err(MigrationError::Bookkeeping)?;
    if !options.allow_out_of_order {
        refuse_out_of_order(conn, &pending)?;
    }
    let watch = if pending.is_empty() {
        None
    } else {
        let pid = backend_pid(conn)?;
        Some(runtime.block_on(LockWatch::start(options.watch_from.as_ref(), pid)))
    };
    // Every commit of this run but the last migration's bookkeeping
    // returns before PostgreSQL has flushed it to disk: see `Durability`.
    conn.batch_execute("SET synchronous_commit = off")?;
    let mut applied = Vec::with_capacity(pending.len());
    for (i, migration) in pending.iter().enumerate() {
        let durability = if i + 1 == pending.len() {
            Durability::Flush
        } else {
            Durability::Deferred
        };
        let (name, version) = (migration.name().to_string(), migration.name().version());
        contract::wait_for_older_releases(
            conn,
            set,
            &name,
            &version.to_string(),
            options.limits.migration_lock_wait,
        )?;
        let attempt = Attempt {
            set,
            checksums: &checksums,
            durability,
            retries: options.limits.table_lock_retries,
            lock_timeout: options.limits.table_lock_timeout,
        };
        applied.push(attempt.apply_retrying(conn, migration.as_ref(), watch.as_ref())?);
    }
    // Nothing of it outlives the run, even on a server session that a
    // pooler would hand to someone else afterwards.
    conn.batch_execute("RESET synchronous_commit")?;
    let versions = applied_oldest_first(conn)?;
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

/// The applied versions, oldest first (diesel lists the newest first).
fn applied_oldest_first(conn: &mut BlockingPgConnection) -> Result<Vec<String>, MigrationError> {
    let mut versions: Vec<String> = conn
        .applied_migrations()
        .map_err(MigrationError::Bookkeeping)?
        .iter()
        .map(|v| v.to_string())
        .collect();
    versions.reverse();
    Ok(versions)
}

fn backend_pid(conn: &mut BlockingPgConnection) -> Result<i32, MigrationError> {
    use diesel::RunQueryDsl;

    Ok(
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "pg_backend_pid()",
        ))
        .get_result(conn)?,
    )
}

/// Refuses pending migrations that sort below the newest applied one:
/// merged from a branch after a later migration ran, they were written
/// against a schema that no longer exists.
fn refuse_out_of_order(
    conn: &mut BlockingPgConnection,
    pending: &[Box<dyn Migration<Pg>>],
) -> Result<(), MigrationError> {
    let applied = conn
        .applied_migrations()
        .map_err(MigrationError::Bookkeeping)?;
    let Some(newest) = applied.iter().max() else {
        return Ok(());
    };
    let below: Vec<String> = pending
        .iter()
        .filter(|m| m.name().version() < *newest)
        .map(|m| m.name().to_string())
        .collect();
    if below.is_empty() {
        return Ok(());
    }
    Err(MigrationError::OutOfOrder {
        migrations: below,
        newest: newest.to_string(),
    })
}

/// How one migration is applied, tried again after a lock timeout.
struct Attempt<'a> {
    set: &'a MigrationSet,
    checksums: &'a BTreeMap<String, String>,
    durability: Durability,
    retries: u32,
    lock_timeout: Duration,
}

impl Attempt<'_> {
    /// Applies `migration`; when a statement gives up on `lock_timeout`,
    /// logs who blocked it and tries again after a pause (holding no table
    /// lock meanwhile, so traffic flows), up to `retries` times.
    fn apply_retrying(
        &self,
        conn: &mut BlockingPgConnection,
        migration: &dyn Migration<Pg>,
        watch: Option<&LockWatch>,
    ) -> Result<AppliedMigration, MigrationError> {
        let name = migration.name().to_string();
        let attempts = self.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            if !migration.metadata().run_in_transaction() {
                invalid_indexes::drop_left_behind(conn, self.set, &name)?;
            }
            let forget_earlier = watch.map(LockWatch::take);
            drop(forget_earlier);
            let error = match apply(conn, migration, self.checksums, self.durability) {
                Err(error) if error.is_lock_timeout() => error,
                done => return done,
            };
            let blockers = lock_waits::describe(&watch.map(LockWatch::take).unwrap_or_default());
            let waited = humantime::format_duration(self.lock_timeout);
            if attempt >= attempts {
                return Err(error.with_hint(format!(
                    " (gave up after {attempts} attempts, each waiting {waited} \
                     (CONDUIT_MIGRATION_LOCK_TIMEOUT) for a table lock instead of stalling the \
                     queries queued behind it; last blocked by {blockers}: end that transaction, \
                     or run the migrations when it is quieter)"
                )));
            }
            attempt += 1;
            let pause = lock_waits::backoff(attempt - 1);
            tracing::warn!(
                migration = %name,
                attempt,
                attempts,
                blocked_by = %blockers,
                retry_in_ms = pause.as_millis() as u64,
                "migration {name} gave up after waiting {waited} for a table lock, blocked by {blockers}; attempt {attempt} of {attempts} in {} ms",
                pause.as_millis()
            );
            std::thread::sleep(pause);
        }
    }
}

/// Whether a migration's bookkeeping commit waits for the disk.
///
/// A run applies its migrations with `synchronous_commit = off`: each
/// commit returns once written to PostgreSQL's WAL buffers, not flushed (a
/// flush is one fsync, about 3 ms here, and an empty database took 18 of
/// them). Only the last migration's bookkeeping (its version row and
/// checksum) commits with the database's own setting, `on` unless
/// configured otherwise. That is safe because:
///
/// - The WAL is one sequence: flushing a commit flushes everything written
///   before it, so once the last bookkeeping commit returns, every earlier
///   migration of the run is on disk too, before the lock is released and
///   before this process answers /ready or `migrate run` returns.
/// - A replica that boots meanwhile without the lock moves on only when
///   nothing is pending, that is once it sees the last version row; that
///   row's commit is visible only after it is durable (PostgreSQL shows a
///   synchronous commit to others after its flush). So no process ever
///   serves on a schema version that a crash could take back.
/// - A crash before that flush loses at most the newest commits of the
///   run, in order, each migration whole with its bookkeeping (transactional
///   ones) or as after a crash in the middle of it (the others, written to
///   be run again): the database comes back at an earlier version and the
///   next boot applies the rest, as after a crash during any run. Requests
///   commit durably (the pool does not change the setting), and their WAL
///   comes after the run's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The bookkeeping commit waits for its flush (and with it, the run's).
    Flush,
    /// The run's last migration will flush this one with its own.
    Deferred,
}

/// Applies one migration and records it (its version, as diesel's harness
/// does, and its checksum) in one transaction: with the migration itself
/// when it runs in a transaction, right after it otherwise.
fn apply(
    conn: &mut BlockingPgConnection,
    migration: &dyn Migration<Pg>,
    checksums: &BTreeMap<String, String>,
    durability: Durability,
) -> Result<AppliedMigration, MigrationError> {
    let name = migration.name().to_string();
    let version = migration.name().version().to_string();
    let started = Instant::now();
    let run = |conn: &mut BlockingPgConnection| -> Result<(), MigrationError> {
        migration
            .run(conn)
            .map_err(|e| MigrationError::failed(&name, e))
    };
    let record = |conn: &mut BlockingPgConnection| -> Result<(), MigrationError> {
        use diesel::connection::SimpleConnection;
        use diesel::{ExpressionMethods, RunQueryDsl};

        if durability == Durability::Flush {
            // The setting the session had before the run's SET.
            conn.batch_execute("SET LOCAL synchronous_commit TO DEFAULT")?;
        }
        diesel::insert_into(super::__diesel_schema_migrations::table)
            .values(super::__diesel_schema_migrations::version.eq(&version))
            .execute(conn)
            .map_err(|e| MigrationError::failed(&name, Box::new(e)))?;
        if let Some(checksum) = checksums.get(&version) {
            checksums::record(conn, &version, checksum)?;
        }
        Ok(())
    };
    if migration.metadata().run_in_transaction() {
        // The migration, its version and its checksum commit together:
        // never one without the others.
        diesel::Connection::transaction(conn, |conn| {
            run(conn)?;
            record(conn)
        })?;
    } else {
        // Its own statements commit as they go (CREATE INDEX CONCURRENTLY,
        // batches); then its version and checksum, together.
        run(conn)?;
        diesel::Connection::transaction(conn, record)?;
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
    limits: LockLimits,
) -> Result<String, MigrationError> {
    let name = migration.name().to_string();
    contract::wait_for_releases_using(
        conn,
        &name,
        &migration.name().version().to_string(),
        limits.migration_lock_wait,
    )?;
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
