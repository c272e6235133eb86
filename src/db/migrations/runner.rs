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

use super::{checksums, lock, BlockingPgConnection, MigrationError, MigrationSet};

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
