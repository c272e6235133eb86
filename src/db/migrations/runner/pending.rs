//! The pending migrations of a run, one after another, each tried again
//! when it gives up on a table lock.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::migration::Migration;
use diesel::pg::Pg;
use diesel_migrations::MigrationHarness;

use super::step::{apply, Durability};
use super::{AppliedMigration, RunOptions, RunReport};
use crate::db::migrations::lock_waits::{self, LockWatch};
use crate::db::migrations::{
    checksums, contract, invalid_indexes, BlockingPgConnection, MigrationError, MigrationSet,
};

pub(super) fn apply_pending(
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
pub(super) fn applied_oldest_first(
    conn: &mut BlockingPgConnection,
) -> Result<Vec<String>, MigrationError> {
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
