//! How requests use the pool: [`Db::run`] hands a closure one connection
//! and, behind a pooler in transaction mode, one transaction.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

use super::Pool;
use crate::config::PoolMode;

/// Why [`Db::run`] got no connection.
pub type AcquireError = deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>;

/// The request pool, and how statements must be grouped on it.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// In transaction mode, what opens each unit of work: `BEGIN` and the
    /// statement timeout for that transaction, in one round trip.
    begin: Option<Arc<str>>,
}

impl Db {
    pub fn new(pool: Pool, mode: PoolMode, statement_timeout: Duration) -> Self {
        let begin = match mode {
            PoolMode::Session => None,
            PoolMode::Transaction => Some(
                format!(
                    "BEGIN; SET LOCAL statement_timeout = {}",
                    statement_timeout.as_millis()
                )
                .into(),
            ),
        };
        Self { pool, begin }
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
    pub async fn run<T, E>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error> + From<AcquireError>,
    {
        let mut conn = self.pool.get().await?;
        let Some(begin) = &self.begin else {
            return work(&mut conn).await;
        };
        AnsiTransactionManager::begin_transaction_sql(&mut *conn, begin).await?;
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
                    tracing::debug!(error = %rollback, "rollback after a failed request");
                }
                Err(error)
            }
        }
    }
}

/// A failure of [`Db::run`] outside a request (boot checks, background
/// jobs), where there is no `AppError` to map it to.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection: {0}")]
    Acquire(#[from] AcquireError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}
