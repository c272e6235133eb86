//! Boot, in order: build the pool (its first connection opens in the
//! background), wait for the database, migrate on a dedicated connection,
//! bind, serve; then, off /ready's path, the demo-account check and the
//! purge. Only the wiring: the stop on a signal is in `shutdown.rs`,
//! the purge of dead rows in `db::purge`, the demo-account check in `auth::demo`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App};

use crate::auth::throttle::Throttle;
use crate::config::{Environment, Settings};
use crate::connections::{self, ConnectionGate};
use crate::db::migrations::{self, MigrationError};
use crate::db::{self, DatabaseUnreachable, Db, Pool};
use crate::methods::{self, KnownMethods};
use crate::metrics::Metrics;
use crate::routes;
use crate::server::{self, ServerOptions};
use crate::state::AppState;
use crate::{auth, extract, openapi, security, shutdown, telemetry};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    DatabaseUnreachable(#[from] DatabaseUnreachable),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("the task building the OpenAPI document ended unexpectedly")]
    Task(#[from] tokio::task::JoinError),
    #[error("could not build the OpenAPI document")]
    OpenApi(#[from] serde_json::Error),
    #[error("could not build the connection pool")]
    Pool(#[from] deadpool::managed::BuildError),
    #[error("could not listen on {address}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// Who may hold a connection: CONDUIT_MAX_CONNECTIONS, or what the
/// descriptor limit leaves; CONDUIT_MAX_CONNECTIONS_PER_ADDRESS.
fn connection_gate(settings: &Settings, workers: usize) -> ConnectionGate {
    let max_total = settings.connections.max_total.map_or_else(
        || connections::default_max_connections(settings.database.pool_size, workers),
        |max| max as usize,
    );
    ConnectionGate::new(
        max_total,
        settings.connections.max_per_address as usize,
        settings.trusted_proxies.clone(),
    )
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    address: SocketAddr,
    pool: Pool,
    draining: Arc<AtomicBool>,
    readiness_delay: Duration,
    purge: tokio::task::JoinHandle<()>,
    presence: tokio::task::JoinHandle<()>,
}

/// How long after listening a boot that is not strict checks for drift
/// and opens its presence connection: their work would compete with the
/// first /ready for the database's CPU.
const LATER_WORK_AFTER: Duration = Duration::from_millis(500);

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let known = settings.migrations.set.catalog()?;
        if let Some(limit) = settings.hash_queue_limit {
            auth::hashing::set_queue_limit(limit as usize);
        }
        // The OpenAPI document (and from it the methods of each path) is
        // built while the connection below waits for the database, off the
        // boot's critical path.
        let document = tokio::task::spawn_blocking(|| {
            let document = openapi::document();
            let methods = KnownMethods::from_document(&document);
            serde_json::to_vec(&document).map(|json| (web::Bytes::from(json), methods))
        });
        let metrics = Metrics::new();
        let pool = db::build_pool(&settings.database, metrics.db_queries())?;
        let db = Db::new(pool.clone(), &settings.database);
        // The pool's first connection opens alongside the migration
        // connection (each costs the server a backend), so the first
        // request (and /ready) does not wait for it. If the database is
        // not up yet, the first request opens one, as without this.
        db::warm_up(&db, known.clone());
        let conn = db::wait_for_database(
            &settings.database.migrations,
            &settings.database.application_name,
            settings.database.wait,
        )
        .await?;
        let schema = migrations::bring_schema_up_to_date(
            conn,
            &settings.migrations,
            &settings.database.migrations,
            settings.database.migration_locks,
            &known,
        )
        .await?;
        metrics.set_schema_version(schema.version.as_deref());
        metrics.set_migrations_out_of_order(schema.out_of_order);
        if let Some(differences) = schema.drift {
            metrics.set_schema_drift(differences);
        }
        // Before serving, so that every account's name is compared from
        // the first request on; only where some account lacks its keys.
        if schema.unkeyed_accounts {
            db::identity_keys::key_unkeyed_accounts(&db).await;
        }
        let drift_metrics = metrics.clone();

        let bind_error = |source| StartupError::Bind {
            address: settings.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.listen).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;

        let draining = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(AppState {
            db: db.clone(),
            metrics,
            migrations: known,
            auth: settings.auth.clone(),
            throttle: Throttle::new(settings.auth.throttle),
            draining: draining.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
        });
        let (document, methods) = document.await??;
        let methods = web::Data::new(methods);
        let cors_origins = settings.cors_origins.clone();
        let body_deadline = extract::BodyDeadline(settings.connections.body_timeout);
        // One worker per core, as actix's default.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let gate = connection_gate(&settings, workers);
        let max_connections = gate.max_total();
        let options = ServerOptions {
            gate,
            workers,
            shutdown_timeout: settings.shutdown_timeout,
        };
        let server = server::serve(listener, options, move || {
            let app = App::new()
                .app_data(state.clone())
                .app_data(methods.clone())
                .app_data(body_deadline)
                .app_data(extract::path_config())
                .app_data(extract::query_config())
                .route("/api/docs", openapi::docs_redirect_route())
                .service(openapi::docs(document.clone()));
            routes::register(app)
                .default_service(web::to(methods::unrouted))
                // Innermost: a HEAD is routed as its GET, and logged as HEAD.
                .wrap(from_fn(methods::head_as_get))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    security::cors(&cors_origins),
                ))
                .wrap(from_fn(security::security_headers))
                .wrap(from_fn(telemetry::log_request))
        })
        .map_err(bind_error)?;
        tracing::info!(%address, max_connections, "listening on http://{address}");
        // What /ready does not need waits until the server is up: the
        // drift check (unless strict), the demo-account check, then the
        // purge of dead rows.
        let demo_check = (settings.environment == Environment::Production)
            .then_some(settings.auth.demo_login_allowed);
        let purge_pause = db::purge::pause_between_rounds(settings.auth.throttle.window);
        // On its own task and connection: the purge keeps its schedule.
        if let Some(check) = schema.deferred_drift_check {
            tokio::spawn(async move {
                tokio::time::sleep(LATER_WORK_AFTER).await;
                if let Some(differences) = check.run().await {
                    drift_metrics.set_schema_drift(differences);
                }
            });
        }
        // So that a revert or a contract migration sees this release even
        // while the pool holds no connection; not while /ready first runs.
        let presence = db::presence::keep(
            settings.database.migrations.clone(),
            settings.database.application_name.clone(),
            LATER_WORK_AFTER,
        );
        let purge = tokio::spawn(async move {
            if let Some(login_allowed) = demo_check {
                auth::demo::warn_if_present(&db, login_allowed).await;
            }
            db::purge::purge_periodically(db, purge_pause).await;
        });
        Ok(Self {
            server,
            address,
            pool,
            draining,
            readiness_delay: settings.shutdown_readiness_delay,
            purge,
            presence,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the server from outside (tests and the signal handlers).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// On SIGTERM or SIGINT: answers `/ready` with 503 for
    /// CONDUIT_SHUTDOWN_READINESS_DELAY while still serving (so a load
    /// balancer takes the replica out first), then stops accepting and
    /// drains. The binary calls it; tests in-process stop through
    /// `handle()` and leave the test runner's signals alone.
    pub fn stop_on_signal(&self, signals: shutdown::StopSignals) {
        shutdown::stop_on_signal(
            signals,
            self.server.handle(),
            self.draining.clone(),
            self.readiness_delay,
        );
    }

    /// Serves until stopped, lets in-flight requests finish, then closes
    /// the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
        self.purge.abort();
        self.presence.abort();
        self.pool.close();
        tracing::info!("stopped");
        outcome
    }
}
