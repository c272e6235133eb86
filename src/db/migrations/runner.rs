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

use super::{checksums, contract, lock, BlockingPgConnection, MigrationError, MigrationSet};

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
    under_lock(conn, limits, move |conn| {
        apply_pending(conn, &set, limits.migration_lock_wait)
    })
    .await
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
        apply(
            conn,
            migration.as_ref(),
            &set.checksums()?,
            Durability::Flush,
        )?;
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
    contract_wait: Duration,
) -> Result<RunReport, MigrationError> {
    use diesel::connection::SimpleConnection;

    let checksums = set.checksums()?;
    // Every commit of this run but the last migration's bookkeeping
    // returns before PostgreSQL has flushed it to disk: see `Durability`.
    conn.batch_execute("SET synchronous_commit = off")?;
    // Read under the lock: another replica may have applied them meanwhile.
    let pending = conn
        .pending_migrations(set.clone())
        .map_err(MigrationError::Bookkeeping)?;
    let mut applied = Vec::with_capacity(pending.len());
    for (i, migration) in pending.iter().enumerate() {
        let durability = if i + 1 == pending.len() {
            Durability::Flush
        } else {
            Durability::Deferred
        };
        let (name, version) = (migration.name().to_string(), migration.name().version());
        contract::wait_for_older_releases(conn, set, &name, &version.to_string(), contract_wait)?;
        applied.push(apply(conn, migration.as_ref(), &checksums, durability)?);
    }
    // Nothing of it outlives the run, even on a server session that a
    // pooler would hand to someone else afterwards.
    conn.batch_execute("RESET synchronous_commit")?;
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
