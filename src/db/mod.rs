//! The connection pool and the first connection of a boot.

pub mod articles;
pub mod comments;
pub mod migrations;
pub mod pool;
pub mod profiles;
pub mod purge;
pub mod sessions;
pub mod throttle;
pub mod tls;
pub mod users;

use std::time::{Duration, Instant};

use diesel::connection::CacheSize;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::{BuildError, Object};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
pub use pool::{Db, DbError};

use crate::config::{DatabaseSettings, PoolMode, PoolRecycling};
use crate::error_chain::Chain;
use tls::PgTls;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server's certificate was refused (unknown CA, wrong host name):
    /// a setting to fix, not a database still starting.
    #[error("the database server's TLS certificate was refused")]
    CertificateRejected(#[source] rustls::Error),
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
}

impl From<ConnectError> for diesel::ConnectionError {
    fn from(error: ConnectError) -> Self {
        match error {
            ConnectError::Connection(error) => error,
            rejected => diesel::ConnectionError::BadConnection(Chain(&rejected).to_string()),
        }
    }
}

/// Opens one connection to `url` (without `sslmode`/`sslrootcert`), with
/// TLS as `tls` says: what `AsyncPgConnection::establish` does, plus TLS.
pub async fn connect(url: &str, tls: &PgTls) -> Result<AsyncPgConnection, ConnectError> {
    let (client, connection) = open(url, tls).await?;
    Ok(AsyncPgConnection::try_from_client_and_connection(client, connection).await?)
}

/// [`connect`], through a pooler in transaction mode. diesel-async's own
/// setup (`SET TIME ZONE`, `SET CLIENT_ENCODING`) prepares each statement
/// in one round trip and runs it in the next; outside a transaction the
/// pooler may send those to different server sessions (failing, and
/// leaving a prepared statement behind on one of them). So the setup runs
/// inside a transaction, which needs the client before diesel-async takes
/// it: the connection is driven here, on the caller's runtime.
async fn connect_through_transaction_pooler(
    url: &str,
    tls: &PgTls,
) -> Result<AsyncPgConnection, ConnectError> {
    let (client, connection) = open(url, tls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %Chain(&error), "a pooled connection ended");
        }
    });
    let setup_failed = |error| diesel::ConnectionError::BadConnection(Chain(&error).to_string());
    client
        .batch_execute("BEGIN; DEALLOCATE ALL")
        .await
        .map_err(setup_failed)?;
    let mut conn = AsyncPgConnection::try_from(client).await?;
    conn.batch_execute("COMMIT")
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The socket side of a connection, which someone must drive (poll).
type PgSession =
    tokio_postgres::Connection<tokio_postgres::Socket, tls::RustlsStream<tokio_postgres::Socket>>;

/// A TCP (and maybe TLS) session to `url`, not yet driven.
async fn open(url: &str, tls: &PgTls) -> Result<(tokio_postgres::Client, PgSession), ConnectError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        diesel::ConnectionError::InvalidConnectionUrl(e.to_string())
    })?;
    tls.configure(&mut config);
    let opened = config.connect(tls.clone()).await.map_err(|error| {
        match tls::certificate_rejection(&error) {
            Some(reason) => ConnectError::CertificateRejected(reason),
            None => diesel::ConnectionError::BadConnection(
                // tokio-postgres' own message alone ("error performing TLS
                // handshake") leaves out the reason.
                Chain(&error).to_string(),
            )
            .into(),
        }
    })?;
    Ok(opened)
}

/// One thread's deadpool over diesel-async connections.
type ThreadPool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
/// A connection checked out of [`Pool`].
pub type PooledConnection = Object<AsyncPgConnection>;
/// Why [`Pool::get`] gave no connection.
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

/// The request pool: one deadpool per thread that uses it (each actix
/// worker, and the main thread for the session purge), each holding
/// connections opened on that thread.
///
/// tokio-postgres drives a connection from a task spawned onto the runtime
/// that opened it. Shared by every worker, a connection opened on one
/// worker's runtime would break when that worker stops first during a
/// graceful shutdown, failing another worker's in-flight request; a
/// runtime of its own (the former design) made every statement hop to its
/// threads and back, two wake-ups per round trip, which is what a busy
/// host turns into tail latency (docs/benchmarks.md). Here a worker only
/// ever uses connections its own runtime drives: no hop, and a stopping
/// worker takes only its own connections with it.
#[derive(Clone)]
pub struct Pool {
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    /// Tells this pool's entries apart in each thread's list.
    id: usize,
    build: Box<dyn Fn() -> Result<ThreadPool, BuildError> + Send + Sync>,
    /// Every thread's pool, for the metrics and for `close`.
    pools: std::sync::Mutex<Vec<ThreadPool>>,
    closed: std::sync::atomic::AtomicBool,
}

thread_local! {
    static THREAD_POOLS: std::cell::RefCell<Vec<(usize, ThreadPool)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Pool {
    /// A connection of this thread's pool, opened on this thread's runtime
    /// if none is idle.
    pub async fn get(&self) -> Result<PooledConnection, PoolError> {
        let pool = self.on_this_thread()?;
        pool.get().await
    }

    fn on_this_thread(&self) -> Result<ThreadPool, PoolError> {
        use std::sync::atomic::Ordering;
        let id = self.shared.id;
        if let Some(pool) = THREAD_POOLS.with_borrow(|pools| {
            pools
                .iter()
                .find(|(key, _)| *key == id)
                .map(|(_, pool)| pool.clone())
        }) {
            return Ok(pool);
        }
        let pool = (self.shared.build)().map_err(|_| PoolError::NoRuntimeSpecified)?;
        {
            let mut all = self
                .shared
                .pools
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.shared.closed.load(Ordering::SeqCst) {
                pool.close();
            }
            all.push(pool.clone());
        }
        THREAD_POOLS.with_borrow_mut(|pools| {
            // Entries of pools closed since (tests start many servers on
            // one thread) go; their connections are already dropped.
            pools.retain(|(_, pool)| !pool.is_closed());
            pools.push((id, pool.clone()));
        });
        Ok(pool)
    }

    /// The threads' pools added up, for the metrics.
    pub fn status(&self) -> deadpool::Status {
        let pools = self
            .shared
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pools.iter().map(ThreadPool::status).fold(
            deadpool::Status {
                max_size: 0,
                size: 0,
                available: 0,
                waiting: 0,
            },
            |sum, one| deadpool::Status {
                max_size: sum.max_size + one.max_size,
                size: sum.size + one.size,
                available: sum.available + one.available,
                waiting: sum.waiting + one.waiting,
            },
        )
    }

    /// Closes every thread's pool: idle connections are dropped at once,
    /// checked-out ones when they come back, and `get` fails from now on.
    pub fn close(&self) {
        let pools = self
            .shared
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for pool in pools.iter() {
            pool.close();
        }
    }
}

/// How many connections one thread's pool may hold: the configured pool
/// size shared among the actix workers (one per core), at least one.
fn per_thread_size(pool_size: usize) -> usize {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    pool_size.div_ceil(workers).max(1)
}

/// Builds the request pool. Connections are opened lazily, on first use,
/// by the thread that needs one; each runs every statement under
/// `settings.statement_timeout` and counts its statements into `queries`.
///
/// Behind a pooler in transaction mode the server session changes between
/// transactions, so nothing may outlive one: no statement cache (a
/// statement prepared in one session is unknown in the next) and no
/// session `SET` (the timeout is set per transaction by [`Db::run`]).
pub fn build_pool(
    settings: &DatabaseSettings,
    queries: prometheus::IntCounter,
) -> Result<Pool, BuildError> {
    static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let timeout_ms = settings.statement_timeout.as_millis();
    let recycling = settings.recycling;
    let pooled_by_transaction = settings.pool_mode == PoolMode::Transaction;
    let tls = settings.requests.tls.clone();
    let url = settings.requests.connection_url("conduit");
    let max_size = per_thread_size(settings.pool_size as usize);
    let acquire_timeout = settings.acquire_timeout;
    let build = move || {
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.recycling_method = match recycling {
            // One simple-protocol round trip: no statement to prepare, so
            // it works through a transaction pooler too.
            PoolRecycling::Verified => RecyclingMethod::CustomFunction(Box::new(|conn| {
                Box::pin(conn.batch_execute("SELECT 1"))
            })),
            PoolRecycling::Fast => RecyclingMethod::Fast,
        };
        let queries = queries.clone();
        let tls = tls.clone();
        config.custom_setup = Box::new(move |url| {
            let url = url.to_owned();
            let queries = queries.clone();
            let tls = tls.clone();
            Box::pin(async move {
                let mut conn = if pooled_by_transaction {
                    let mut conn = connect_through_transaction_pooler(&url, &tls).await?;
                    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                    conn
                } else {
                    let mut conn = connect(&url, &tls).await?;
                    conn.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    conn
                };
                conn.set_instrumentation(QueryCounter(queries));
                Ok(conn)
            })
        });
        let manager =
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url.clone(), config);
        ThreadPool::builder(manager)
            .max_size(max_size)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(acquire_timeout))
            .recycle_timeout(Some(acquire_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
    };
    // A setting that cannot build a pool fails the boot, not a request.
    drop(build()?);
    Ok(Pool {
        shared: std::sync::Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            build: Box::new(build),
            pools: std::sync::Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }),
    })
}

/// Opens this thread's first pooled connection in the background, so the
/// first request it serves (usually the orchestrator's /ready) does not
/// wait for it. Called by each actix worker as it starts; outside a tokio
/// runtime it does nothing. A failure is only logged; requests open
/// connections on demand anyway.
pub fn warm_up(pool: &Pool) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(error) = pool.get().await {
            tracing::debug!(%error, "could not open a connection ahead of the first request");
        }
    });
}

/// The name of the unique constraint `error` violates, if it is a unique
/// violation: how a query's caller tells "taken" from a failure.
pub fn violated_unique_constraint(error: &diesel::result::Error) -> Option<&str> {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) => info.constraint_name(),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not connect to the database at {target} within {waited_secs}s")]
pub struct DatabaseUnreachable {
    pub target: String,
    pub waited_secs: u64,
    #[source]
    pub last_error: AttemptFailed,
}

/// Why one attempt of [`wait_for_database`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptFailed {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("no answer within {0}ms")]
    NoAnswer(u128),
}

/// Opens the migration connection (CONDUIT_MIGRATION_DATABASE_URL, by
/// default DATABASE_URL), retrying with backoff until `settings.wait` has
/// passed: in containers the database often starts after the app. A
/// refused certificate is not retried.
pub async fn wait_for_database(
    settings: &DatabaseSettings,
    application_name: &str,
) -> Result<AsyncPgConnection, DatabaseUnreachable> {
    let endpoint = &settings.migrations;
    let url = endpoint.connection_url(application_name);
    let target = endpoint.display_target();
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1u32;
    loop {
        let remaining = settings.wait.saturating_sub(started.elapsed());
        let per_attempt = remaining.clamp(Duration::from_millis(500), Duration::from_secs(5));
        let error = match tokio::time::timeout(per_attempt, connect(&url, &endpoint.tls)).await {
            Ok(Ok(connection)) => {
                if attempt > 1 {
                    tracing::info!(%target, attempt, "database is reachable");
                }
                return Ok(connection);
            }
            Ok(Err(error @ ConnectError::CertificateRejected(_))) => {
                return Err(DatabaseUnreachable {
                    target,
                    waited_secs: started.elapsed().as_secs(),
                    last_error: error.into(),
                })
            }
            Ok(Err(error)) => AttemptFailed::Connect(error),
            Err(_) => AttemptFailed::NoAnswer(per_attempt.as_millis()),
        };
        let remaining = settings.wait.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(DatabaseUnreachable {
                target,
                waited_secs: started.elapsed().as_secs(),
                last_error: error,
            });
        }
        let pause = delay.min(remaining);
        tracing::warn!(
            %target,
            attempt,
            error = %Chain(&error),
            retry_in_ms = pause.as_millis() as u64,
            "database not reachable yet"
        );
        tokio::time::sleep(pause).await;
        delay = (delay * 2).min(Duration::from_secs(2));
        attempt += 1;
    }
}
