//! The connection pool and the first connection of a boot.

pub mod application_name;
pub mod articles;
pub mod comments;
pub mod demo_account;
pub mod endpoint;
pub mod favorites;
mod functions;
pub mod identity_keys;
pub mod migrations;
pub mod pool;
pub mod presence;
pub mod profiles;
pub mod purge;
pub mod sessions;
pub mod settings;
pub mod tags;
pub mod throttle;
pub mod tls;
pub mod url;
pub mod users;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::connection::CacheSize;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::BuildError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
pub use pool::{Db, DbError};

use crate::error_chain::Chain;
use settings::{DatabaseSettings, PoolMode, PoolRecycling};
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

/// The runtime that drives pooled connections. tokio-postgres spawns one
/// task per connection onto whatever runtime opened it; opened on an actix
/// worker, a connection that any worker may check out would depend on that
/// one worker's runtime, and break when that worker stops first during a
/// graceful shutdown, failing another worker's in-flight request.
fn connection_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("conduit-db")
            .enable_all()
            .build()
            .expect("the operating system gives threads to a new runtime")
    })
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
) -> Result<AsyncPgConnection, DatabaseUnreachable> {
    let endpoint = &settings.migrations;
    let url = endpoint.connection_url(&settings.application_name);
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
