//! How requests use the pool: [`Db::run`] hands a closure one connection
//! and, behind a pooler in transaction mode, one transaction.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

use deadpool::managed::TimeoutType;

use super::settings::{DatabaseSettings, PoolMode};
use super::{Pool, PoolError};

/// The request pool, and how statements must be grouped on it.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// In transaction mode, what opens each unit of work, in one round
    /// trip: see [`begin_sql`].
    begin: Option<Arc<str>>,
    /// How long `BEGIN` may wait: a pooler queues it until a server
    /// connection is free, which is the real wait for a connection there.
    acquire_timeout: Duration,
}

/// `BEGIN`, the statement timeout for this transaction only (a `SET` would
/// stay on the server connection for the pooler's next client), and
/// `DEALLOCATE ALL`: a statement another client left prepared on this
/// server connection (a replica in session mode, a `psql` session)
/// would otherwise collide with ours, since tokio-postgres names them
/// `s0`, `s1`, ... in every process alike.
pub(super) fn begin_sql(statement_timeout: Duration) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {}; DEALLOCATE ALL",
        statement_timeout.as_millis()
    )
}

impl Db {
    pub fn new(pool: Pool, settings: &DatabaseSettings) -> Self {
        let begin = match settings.pool_mode {
            PoolMode::Session => None,
            PoolMode::Transaction => Some(begin_sql(settings.statement_timeout).into()),
        };
        Self {
            pool,
            begin,
            acquire_timeout: settings.acquire_timeout,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `work` on one pooled connection.
    ///
    /// In session mode the statements run as they come, as on any
    /// connection. In transaction mode they run in one transaction,
    /// committed when `work` returns `Ok` and rolled back when it returns
    /// `Err`: a transaction pooler lends us a server session only between
    /// `BEGIN` and `COMMIT`, and tokio-postgres prepares every statement in
    /// one round trip and executes it in the next, which must reach the
    /// same session. (`conn.transaction` inside `work` nests as a savepoint.)
    ///
    /// `work` must return `Err` when a statement failed, as `?` does: in a
    /// transaction, PostgreSQL ignores every later statement and turns the
    /// `COMMIT` into a silent rollback, so an error swallowed into `Ok`
    /// would answer success with nothing written.
    pub async fn run<T, E>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error> + From<PoolError>,
    {
        let mut conn = self.pool.get().await?;
        let Some(begin) = &self.begin else {
            return work(&mut conn).await;
        };
        let begin = AnsiTransactionManager::begin_transaction_sql(&mut *conn, begin);
        match tokio::time::timeout(self.acquire_timeout, begin).await {
            Ok(begun) => begun?,
            // The connection, cut mid-statement, is marked broken and
            // dropped by the pool; the request answers 503 like any
            // other wait for a connection that timed out.
            Err(_) => return Err(PoolError::Timeout(TimeoutType::Wait).into()),
        }
        match work(&mut conn).await {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(&mut *conn).await?;
                Ok(value)
            }
            Err(error) => {
                // The work's error is the one to report; a connection
                // whose rollback failed is marked broken and not reused.
                if let Err(rollback) =
                    AnsiTransactionManager::rollback_transaction(&mut *conn).await
                {
                    tracing::warn!(error = %rollback, "rollback after a failed request failed");
                }
                Err(error)
            }
        }
    }
}

/// Runs `work` in a transaction on `conn` (a savepoint when one is already
/// open, as in transaction mode), committed on `Ok`, rolled back on `Err`.
///
/// `conn.transaction` would do the same, but asks for a `Send` future,
/// which a closure handed down from a handler (building an actix response,
/// which is not `Send`) cannot promise.
pub async fn transaction<T, E>(
    conn: &mut AsyncPgConnection,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    AnsiTransactionManager::begin_transaction(conn).await?;
    match work(conn).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(conn).await {
                tracing::warn!(error = %rollback, "rollback after a failed write failed");
            }
            Err(error)
        }
    }
}

/// A failure of [`Db::run`] outside a request (boot checks, background
/// jobs), where there is no `AppError` to map it to.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection: {0}")]
    Acquire(#[from] PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}
