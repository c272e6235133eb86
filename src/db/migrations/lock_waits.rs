//! Who blocks a migration waiting for a table lock, and how long to wait
//! before trying it again.
//!
//! Once a statement has given up on `lock_timeout` it no longer waits, so
//! `pg_blocking_pids` has nothing to say about it: the sessions blocking it
//! are read while it waits, by a watcher on a connection of its own that
//! looks every [`WATCH_INTERVAL`] while migrations are being applied.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::sql_types::{Double, Integer, Text};
use diesel::QueryableByName;
use diesel_async::AsyncPgConnection;

use crate::db::endpoint::Endpoint;

/// How often the watcher asks who blocks the migration connection.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// The first pause before a retry; each retry doubles it, up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);

/// A session that held a lock the migration waited for.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Blocker {
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    #[diesel(sql_type = Text)]
    pub application_name: String,
    #[diesel(sql_type = Text)]
    pub client: String,
    #[diesel(sql_type = Text)]
    pub state: String,
    /// How long its transaction has been open, in seconds.
    #[diesel(sql_type = Double)]
    pub transaction_secs: f64,
    /// The first 200 characters of its current (or last) query.
    #[diesel(sql_type = Text)]
    pub query: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} (application_name {:?}, client {}, state {:?}, transaction open {:.1}s, query {:?})",
            self.pid,
            self.application_name,
            self.client,
            self.state,
            self.transaction_secs,
            self.query
        )
    }
}

/// The blockers, one after the other, for a log line or an error.
pub fn describe(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "no blocking session seen (it ended before it could be read)".to_owned();
    }
    blockers
        .iter()
        .map(Blocker::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

const BLOCKERS: &str = "SELECT a.pid, coalesce(a.application_name, '') AS application_name, \
     coalesce(host(a.client_addr), 'local') AS client, coalesce(a.state, '') AS state, \
     coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8 AS transaction_secs, \
     left(coalesce(a.query, ''), 200) AS query \
     FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.pid";

/// The sessions blocking the migration connection, as last seen while it
/// waited; kept until [`LockWatch::take`] reads them.
pub struct LockWatch {
    seen: Arc<Mutex<Vec<Blocker>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LockWatch {
    /// Watches backend `pid` from a connection of its own to `endpoint`.
    /// Without that connection the migration runs all the same, only
    /// without names for its blockers.
    pub async fn start(endpoint: Option<&Endpoint>, pid: i32) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let conn = match endpoint {
            Some(endpoint) => {
                let url = endpoint.connection_url("conduit-migrate-watch");
                match crate::db::connect(&url, &endpoint.tls).await {
                    Ok(conn) => Some(conn),
                    Err(error) => {
                        tracing::warn!(error = %crate::error_chain::Chain(&error), "cannot watch for sessions blocking migrations: lock timeouts will not name them");
                        None
                    }
                }
            }
            None => None,
        };
        let task = conn.map(|conn| tokio::spawn(watch(conn, pid, seen.clone())));
        Self { seen, task }
    }

    /// The blockers seen since the last call.
    pub fn take(&self) -> Vec<Blocker> {
        self.seen
            .lock()
            .map(|mut seen| std::mem::take(&mut *seen))
            .unwrap_or_default()
    }
}

impl Drop for LockWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn watch(mut conn: AsyncPgConnection, pid: i32, seen: Arc<Mutex<Vec<Blocker>>>) {
    use diesel_async::RunQueryDsl;

    loop {
        let blockers = diesel::sql_query(BLOCKERS)
            .bind::<Integer, _>(pid)
            .load::<Blocker>(&mut conn)
            .await;
        match blockers {
            Ok(blockers) if !blockers.is_empty() => {
                if let Ok(mut last) = seen.lock() {
                    *last = blockers;
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "stopped watching for sessions blocking migrations");
                return;
            }
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// The pause before retry `retry` (1 for the first): doubling from
/// [`FIRST_BACKOFF`] up to [`LONGEST_BACKOFF`], then a random point in its
/// upper half, so that replicas retrying together do not queue together.
pub fn backoff(retry: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(LONGEST_BACKOFF);
    let half = full / 2;
    let spread = half.as_millis() as u64;
    let jitter = getrandom::u64().unwrap_or(0) % (spread + 1);
    half + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_in_its_upper_half_and_is_capped() {
        for (retry, full) in [(1, 1), (2, 2), (3, 4), (6, 30), (40, 30)] {
            let full = Duration::from_secs(full);
            for _ in 0..50 {
                let pause = backoff(retry);
                assert!(pause >= full / 2 && pause <= full, "{retry}: {pause:?}");
            }
        }
    }
}
