//! The connection pool and the first connection of a boot.

pub mod articles;
pub mod comments;
pub mod migrations;
pub mod profiles;
pub mod sessions;
pub mod users;

use std::time::{Duration, Instant};

use diesel_async::pooled_connection::deadpool::{BuildError, Object};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::config::DatabaseSettings;

/// The request pool: deadpool over diesel-async connections.
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
/// A connection checked out of [`Pool`].
pub type PooledConnection = Object<AsyncPgConnection>;

/// Builds the request pool. Connections are opened lazily, on first use.
pub fn build_pool(settings: &DatabaseSettings) -> Result<Pool, BuildError> {
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new(settings.connection_url("conduit"));
    Pool::builder(manager)
        .max_size(settings.pool_size as usize)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.acquire_timeout))
        .recycle_timeout(Some(settings.acquire_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}

#[derive(Debug, thiserror::Error)]
#[error("could not connect to the database at {target} within {waited_secs}s: {last_error}")]
pub struct DatabaseUnreachable {
    pub target: String,
    pub waited_secs: u64,
    pub last_error: String,
}

/// Connects to the database, retrying with backoff until `settings.wait`
/// has passed: in containers the database often starts after the app.
pub async fn wait_for_database(
    settings: &DatabaseSettings,
    application_name: &str,
) -> Result<AsyncPgConnection, DatabaseUnreachable> {
    let url = settings.connection_url(application_name);
    let target = settings.display_target();
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1u32;
    loop {
        let remaining = settings.wait.saturating_sub(started.elapsed());
        let per_attempt = remaining.clamp(Duration::from_millis(500), Duration::from_secs(5));
        let error =
            match tokio::time::timeout(per_attempt, AsyncPgConnection::establish(&url)).await {
                Ok(Ok(connection)) => {
                    if attempt > 1 {
                        tracing::info!(%target, attempt, "database is reachable");
                    }
                    return Ok(connection);
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {}ms", per_attempt.as_millis()),
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
            %error,
            retry_in_ms = pause.as_millis() as u64,
            "database not reachable yet"
        );
        tokio::time::sleep(pause).await;
        delay = (delay * 2).min(Duration::from_secs(2));
        attempt += 1;
    }
}
