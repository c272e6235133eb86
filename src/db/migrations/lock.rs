//! The migration lock: a session advisory lock, taken by polling.
//!
//! Waiting in a blocking `pg_advisory_lock` would hold a snapshot open, and
//! a `CREATE INDEX CONCURRENTLY` run by the lock holder waits for every
//! older snapshot: a deadlock. So waiters poll `pg_try_advisory_lock`, with
//! no statement open in between.

use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{IntoSql, OptionalExtension, QueryResult, QueryableByName, TextExpressionMethods};

use super::{BlockingPgConnection, MigrationError};
use crate::db::functions::{
    current_database, hashtextextended, pg_advisory_unlock, pg_try_advisory_lock,
};

/// How long a waiting process sleeps between two tries for the lock.
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a waiting process says that it is still waiting.
const LOCK_WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// The advisory lock key: fixed per database, so replicas of one database
/// exclude each other and other databases on the server are not affected.
fn lock_key(conn: &mut BlockingPgConnection) -> QueryResult<i64> {
    use diesel::RunQueryDsl;

    let name = "conduit:migrations:"
        .into_sql::<Text>()
        .concat(current_database());
    diesel::select(hashtextextended(name, 0)).get_result(conn)
}

#[derive(QueryableByName)]
struct LockHolder {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    application_name: String,
}

/// Takes the migration lock; returns its key, for [`release_lock`].
pub(super) fn acquire_lock(
    conn: &mut BlockingPgConnection,
    lock_wait: Duration,
) -> Result<i64, MigrationError> {
    use diesel::RunQueryDsl;

    let started = Instant::now();
    let mut last_log: Option<Instant> = None;
    let key = lock_key(conn)?;
    loop {
        let locked: bool = diesel::select(pg_try_advisory_lock(key)).get_result(conn)?;
        if locked {
            if last_log.is_some() {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "took the migration lock"
                );
            }
            return Ok(key);
        }
        if started.elapsed() >= lock_wait {
            let holder = lock_holder(conn, key)
                .map(|h| format!(" (held by pid {}, {:?})", h.pid, h.application_name))
                .unwrap_or_default();
            return Err(MigrationError::LockTimeout {
                waited_secs: started.elapsed().as_secs(),
                holder,
            });
        }
        if last_log.is_none_or(|at| at.elapsed() >= LOCK_WAIT_LOG_INTERVAL) {
            match lock_holder(conn, key) {
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
fn lock_holder(conn: &mut BlockingPgConnection, key: i64) -> Option<LockHolder> {
    use diesel::RunQueryDsl;

    // A bigint advisory key is stored as classid (high half) and objid
    // (low half), with objsubid 1.
    diesel::sql_query(include_str!("lock_holder.sql"))
        .bind::<BigInt, _>(key)
        .get_result::<LockHolder>(conn)
        .optional()
        .ok()
        .flatten()
}

pub(super) fn release_lock(conn: &mut BlockingPgConnection, key: i64) -> QueryResult<bool> {
    use diesel::RunQueryDsl;

    diesel::select(pg_advisory_unlock(key)).get_result(conn)
}
