//! Deleting rows that can never be used again, off the request path: ended
//! and expired sessions, and throttling counters whose window has ended.

use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::{sessions, throttle, Db, DbError};

/// Rows deleted per statement: each statement is short and holds its
/// pooled connection for that statement only.
const PURGE_BATCH: i64 = 1_000;
/// The longest pause between rounds. A round deletes every row that is
/// dead when it runs, so the tables hold at most what was written within
/// a window plus one pause, whatever the rate of writes. Not shorter: each
/// round's statements count in `conduit_db_queries_total`, which tests
/// (and operators) read per request.
const LONGEST_PAUSE: Duration = Duration::from_secs(600);
const FIRST_PURGE_AFTER: Duration = Duration::from_secs(1);

/// How long the purge pauses between rounds: a throttling window, at most
/// [`LONGEST_PAUSE`], so that short windows (tests, strict settings) keep
/// a table as small as long ones do.
pub fn pause_between_rounds(throttle_window: Duration) -> Duration {
    throttle_window.clamp(FIRST_PURGE_AFTER, LONGEST_PAUSE)
}

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

/// A [`purge_round`] soon after boot, then after every `pause`
/// ([`pause_between_rounds`]).
pub async fn purge_periodically(db: Db, pause: Duration) {
    // The first round waits for the orchestrator's first probes, so that
    // /ready does not queue behind its statements for the pool's first
    // connection; then a backlog starts shrinking.
    tokio::time::sleep(FIRST_PURGE_AFTER).await;
    loop {
        purge_round(&db, pause).await;
        tokio::time::sleep(pause).await;
        // Boot keyed the accounts; this catches those written since by a
        // server that predates the keys, or after a release job migrated.
        super::identity_keys::key_unkeyed_accounts(&db).await;
    }
}

/// Deletes dead sessions and throttling counters, in batches, until none
/// is left or the round has taken `longest`: a round that stopped after a
/// fixed number of batches fell behind any flood that wrote faster than
/// that number per pause. Between batches the connection goes back to the
/// pool. A failure is logged and retried next round.
pub async fn purge_round(db: &Db, longest: Duration) {
    let deadline = Instant::now() + longest;
    for table in [Table::Sessions, Table::ThrottleCounters] {
        purge_table(db, table, deadline).await;
    }
}

async fn purge_table(db: &Db, table: Table, deadline: Instant) {
    let mut purged = 0;
    loop {
        let deleted = db
            .run(async |conn| Ok::<_, DbError>(table.purge_batch(conn).await?))
            .await;
        match deleted {
            Ok(count) => {
                purged += count;
                if (count as i64) < PURGE_BATCH || Instant::now() >= deadline {
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
