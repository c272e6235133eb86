//! The request pool, built once, and how requests use it: [`Db::run`]
//! hands a closure one connection and, behind a pooler in transaction
//! mode, one transaction.

use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::TimeoutType;
use diesel::connection::{CacheSize, Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::BuildError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
};

use super::connect::{connect, connect_through_transaction_pooler, connection_runtime};
use super::migrations;
use super::settings::{DatabaseSettings, PoolMode, PoolRecycling};

/// The request pool: deadpool over diesel-async connections.
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
/// Why the pool gave no connection.
pub type PoolError = deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>;

/// Counts the SQL statements a connection runs (`conduit_db_queries_total`):
/// how tests prove that a list costs the same whatever its length.
struct QueryCounter(prometheus::IntCounter);

impl Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.inc();
        }
    }
}

/// Builds the request pool. Connections are opened lazily, on first use;
/// each runs every statement under `settings.statement_timeout` and counts
/// its statements into `queries`.
///
/// Behind a pooler in transaction mode the server session changes between
/// transactions, so nothing may outlive one: no statement cache (a
/// statement prepared in one session is unknown in the next) and no
/// session `SET` (the timeout is set per transaction by [`Db::run`]).
pub fn build_pool(
    settings: &DatabaseSettings,
    queries: prometheus::IntCounter,
) -> Result<Pool, BuildError> {
    let timeout_ms = settings.statement_timeout.as_millis();
    let pooled_by_transaction = settings.pool_mode == PoolMode::Transaction;
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = match settings.recycling {
        // One simple-protocol round trip: no statement to prepare, so it
        // works through a transaction pooler too.
        PoolRecycling::Verified => RecyclingMethod::CustomFunction(Box::new(|conn| {
            Box::pin(conn.batch_execute("SELECT 1"))
        })),
        PoolRecycling::Fast => RecyclingMethod::Fast,
    };
    let tls = settings.requests.tls.clone();
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let queries = queries.clone();
        let tls = tls.clone();
        let connect = async move {
            let mut conn = if pooled_by_transaction {
                connect_through_transaction_pooler(&url, &tls).await?
            } else {
                connect(&url, &tls).await?
            };
            if pooled_by_transaction {
                conn.set_prepared_statement_cache_size(CacheSize::Disabled);
            } else {
                conn.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            conn.set_instrumentation(QueryCounter(queries));
            Ok(conn)
        };
        Box::pin(async move {
            connection_runtime()
                .spawn(connect)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?
        })
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        settings.requests.connection_url(&settings.application_name),
        config,
    );
    Pool::builder(manager)
        .max_size(settings.pool_size as usize)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.acquire_timeout))
        .recycle_timeout(Some(settings.acquire_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}

/// Opens the pool's first connection in the background, so the first
/// request (usually the orchestrator's /ready) does not wait for it, and
/// runs /ready's reads on it once: their statements are then prepared and
/// the tables they read known to that server process, so the first probe
/// is one round trip. One connection is enough: opening more at boot
/// competes with the boot itself for the CPU. A failure is only logged;
/// requests open connections on demand anyway.
pub fn warm_up(db: &Db, known: Vec<migrations::KnownMigration>) {
    let db = db.clone();
    connection_runtime().spawn(async move {
        // Through `Db::run`, as /ready: in one transaction behind a
        // transaction pooler. On a new database the read fails (nothing
        // to read yet), as /ready would; the connection stays usable.
        let read = db
            .run(async |conn| {
                migrations::schema_state(conn, &known)
                    .await
                    .map_err(DbError::Query)
            })
            .await;
        if let Err(DbError::Acquire(error)) = read {
            tracing::debug!(%error, "could not open a connection ahead of the first request");
        }
    });
}

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
