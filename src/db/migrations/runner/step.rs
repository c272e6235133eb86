//! One migration forward or back, with its bookkeeping.

use std::collections::BTreeMap;
use std::time::Instant;

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel_migrations::MigrationHarness;

use super::{AppliedMigration, LockLimits};
use crate::db::migrations::{
    __diesel_schema_migrations, checksums, contract, BlockingPgConnection, MigrationError,
    MigrationSet,
};

/// Whether a migration's bookkeeping commit waits for the disk.
///
/// A run applies its migrations with `synchronous_commit = off`: each
/// commit returns once written to PostgreSQL's WAL buffers, not flushed
/// (each flush is an fsync; docs/benchmarks.md, "Boot to /ready"). Only
/// the last migration's bookkeeping (its version row and checksum) commits
/// with the database's own setting, `on` unless configured otherwise.
/// That is safe because:
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
pub(super) enum Durability {
    /// The bookkeeping commit waits for its flush (and with it, the run's).
    Flush,
    /// The run's last migration will flush this one with its own.
    Deferred,
}

/// Applies one migration and records it (its version, as diesel's harness
/// does, and its checksum) in one transaction: with the migration itself
/// when it runs in a transaction, right after it otherwise.
pub(super) fn apply(
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
        diesel::insert_into(__diesel_schema_migrations::table)
            .values(__diesel_schema_migrations::version.eq(&version))
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

/// Reverts one migration once no release that uses it is connected, and
/// forgets its checksum.
pub(super) fn revert(
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

/// The newest applied migration, as this binary knows it.
pub(super) fn newest_applied(
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
