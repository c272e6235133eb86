//! Applying and reverting migrations under the migration lock. The lock
//! holder re-reads what is pending once it has the lock, since another
//! replica may have done the work meanwhile.
//!
//! The harness is synchronous; it runs on a blocking thread through
//! `AsyncConnectionWrapper` (diesel-async's own `AsyncMigrationHarness`
//! panics on actix's current-thread runtime).

mod pending;
mod step;

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;

use super::{checksums, lock, BlockingPgConnection, MigrationError, MigrationSet};
use crate::db::endpoint::Endpoint;
use pending::{applied_oldest_first, apply_pending};
use step::{apply, newest_applied, revert, Durability};

pub use super::checksums::RepairedChecksum;

/// A migration applied by this run.
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    /// Its directory name (version and title).
    pub name: String,
    /// How long it took, bookkeeping included.
    pub duration: Duration,
}

/// The result of [`run_pending`].
#[derive(Debug, Clone)]
pub struct RunReport {
    /// What this run applied, in order.
    pub applied: Vec<AppliedMigration>,
    /// The newest applied version after the run.
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
    /// How long to wait for locks.
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
        refuse_history(&applied)?;
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

        let key = lock::acquire_lock(&mut conn, limits.migration_lock_wait)?;
        let outcome = conn
            .batch_execute(&format!(
                "SET lock_timeout = {}",
                limits.table_lock_timeout.as_millis()
            ))
            .map_err(MigrationError::from)
            .and_then(|()| work(&mut conn));
        // Closing the connection would release the lock too; unlocking
        // explicitly lets the next replica go on at once.
        if let Err(error) = lock::release_lock(&mut conn, key) {
            tracing::warn!(%error, "could not release the migration lock; it ends with the connection");
        }
        outcome.map(|done| (done, conn.into_inner()))
    })
    .await
    .map_err(MigrationError::Task)?
}

/// Baseline is for a database with no history: with one, `migrate run`
/// knows what to do and a baseline would hide what it did not run.
pub(super) fn refuse_history(applied: &[String]) -> Result<(), MigrationError> {
    match applied.last() {
        None => Ok(()),
        Some(newest) => Err(MigrationError::CannotBaseline(format!(
            "the database already has a migration history ({} applied, newest {newest}); \
             baseline only adopts a database with none: use `conduit migrate run`",
            applied.len()
        ))),
    }
}
