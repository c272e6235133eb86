//! Deleting rows that can never be used again, off the request path: ended
//! and expired sessions, and throttling counters whose window has ended.

use std::time::Duration;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::{sessions, throttle, Db, DbError};

/// Rows deleted per statement, and statements per table per round at most.
const PURGE_BATCH: i64 = 1_000;
const PURGE_BATCHES_PER_ROUND: usize = 100;
const PURGE_EVERY: Duration = Duration::from_secs(600);
const FIRST_PURGE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Table {
    Sessions,
    ThrottleCounters,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Sessions => "sessions",
            Table::ThrottleCounters => "throttle_counters",
        }
    }

    async fn purge_batch(self, conn: &mut AsyncPgConnection) -> QueryResult<usize> {
        match self {
            Table::Sessions => sessions::purge_ended(conn, PURGE_BATCH).await,
            Table::ThrottleCounters => throttle::purge_expired(conn, PURGE_BATCH).await,
        }
    }
}

/// A [`purge_round`] soon after boot, then every ten minutes.
pub async fn purge_periodically(db: Db) {
    // The first round waits for the orchestrator's first probes, so that
    // /ready does not queue behind its statements for the pool's first
    // connection; then a backlog starts shrinking.
    tokio::time::sleep(FIRST_PURGE_AFTER).await;
    loop {
        purge_round(&db).await;
        tokio::time::sleep(PURGE_EVERY).await;
    }
}

/// Deletes dead sessions and throttling counters in bounded batches,
/// stopping after `PURGE_BATCHES_PER_ROUND` per table so that it never
/// holds a connection for long. A failure is logged and retried next round.
pub async fn purge_round(db: &Db) {
    for table in [Table::Sessions, Table::ThrottleCounters] {
        purge_table(db, table).await;
    }
}

async fn purge_table(db: &Db, table: Table) {
    let mut purged = 0;
    for _ in 0..PURGE_BATCHES_PER_ROUND {
        let deleted = db
            .run(async |conn| Ok::<_, DbError>(table.purge_batch(conn).await?))
            .await;
        match deleted {
            Ok(count) => {
                purged += count;
                if (count as i64) < PURGE_BATCH {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, table = table.name(), "purge failed");
                break;
            }
        }
    }
    if purged > 0 {
        tracing::info!(
            purged,
            table = table.name(),
            "deleted rows that can never be used again"
        );
    }
}
