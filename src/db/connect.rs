//! Opening connections: one (TLS as the URL's sslmode says), through a
//! transaction pooler, on the runtime that drives pooled connections, and
//! the wait for a database that is still starting.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

use super::endpoint::Endpoint;
use super::tls::{self, PgTls};
use crate::error_chain::Chain;

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
pub(super) async fn connect_through_transaction_pooler(
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
pub(super) async fn open(
    url: &str,
    tls: &PgTls,
) -> Result<(tokio_postgres::Client, PgSession), ConnectError> {
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

/// The runtime that drives pooled connections. tokio-postgres spawns one
/// task per connection onto whatever runtime opened it; opened on an actix
/// worker, a connection that any worker may check out would depend on that
/// one worker's runtime, and break when that worker stops first during a
/// graceful shutdown, failing another worker's in-flight request.
pub(super) fn connection_runtime() -> &'static tokio::runtime::Runtime {
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

/// Opens a connection to `endpoint` (at boot, the migrations' one:
/// CONDUIT_MIGRATION_DATABASE_URL, by default DATABASE_URL), retrying with backoff until `wait` has
/// passed: in containers the database often starts after the app. A
/// refused certificate is not retried.
pub async fn wait_for_database(
    endpoint: &Endpoint,
    application_name: &str,
    wait: Duration,
) -> Result<AsyncPgConnection, DatabaseUnreachable> {
    let url = endpoint.connection_url(application_name);
    let target = endpoint.display_target();
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1u32;
    loop {
        let remaining = wait.saturating_sub(started.elapsed());
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
        let remaining = wait.saturating_sub(started.elapsed());
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
