//! Boot, in order: wait for the database, migrate on a dedicated connection,
//! build the pool, bind, serve.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};

use utoipa_actix_web::AppExt;

use crate::config::{Environment, Settings};
use crate::db::migrations::{self, MigrationError};
use crate::db::{self, DatabaseUnreachable, Pool};
use crate::metrics::Metrics;
use crate::routes::{self, health::KnownMigrations};
use crate::{auth, extract, openapi, security, telemetry};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    DatabaseUnreachable(#[from] DatabaseUnreachable),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("{0} (CONDUIT_STRICT_SCHEMA is on)")]
    SchemaMismatch(String),
    #[error("a startup task ended unexpectedly: {0}")]
    Task(String),
    #[error("could not build the connection pool: {0}")]
    Pool(#[from] deadpool::managed::BuildError),
    #[error("could not listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    address: SocketAddr,
    pool: Pool,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let known = settings.migrations.catalog()?;
        // The OpenAPI document is built while the connection below waits
        // for the database, off the boot's critical path.
        let document = tokio::task::spawn_blocking(openapi::document_json);
        let conn = db::wait_for_database(&settings.database, "conduit-migrate").await?;
        let metrics = Metrics::new();
        let pool = db::build_pool(&settings.database, metrics.db_queries())?;
        // The workers' first connections open while the schema is checked,
        // so the first requests (and /ready) do not wait for them.
        db::warm_up(&pool);
        bring_schema_up_to_date(conn, &settings, &known, &metrics).await?;

        let bind_error = |source| StartupError::Bind {
            address: settings.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.listen).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;

        if settings.environment == Environment::Production {
            warn_about_demo_account(&pool, settings.auth.demo_login_allowed).await;
        }

        let pool_data = web::Data::new(pool.clone());
        let metrics = web::Data::new(metrics);
        let known = web::Data::new(KnownMigrations(known));
        let auth_settings = web::Data::new(settings.auth.clone());
        let login_throttle =
            web::Data::new(auth::throttle::LoginThrottle::new(settings.auth.throttle));
        let document = document
            .await
            .map_err(|e| StartupError::Task(e.to_string()))?
            .map_err(|e| StartupError::Task(format!("the OpenAPI document: {e}")))?;
        let cors_origins = settings.cors_origins.clone();
        let server = HttpServer::new(move || {
            let app = App::new()
                .app_data(pool_data.clone())
                .app_data(metrics.clone())
                .app_data(known.clone())
                .app_data(auth_settings.clone())
                .app_data(login_throttle.clone())
                .app_data(extract::path_config())
                .app_data(extract::query_config())
                .route("/api/docs", openapi::docs_redirect_route())
                .service(openapi::docs(document.clone()));
            routes::register(app.into_utoipa_app())
                .into_app()
                .default_service(web::to(routes::not_found))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    security::cors(&cors_origins),
                ))
                .wrap(from_fn(security::security_headers))
                .wrap(from_fn(telemetry::log_request))
        })
        .listen(listener)
        .map_err(bind_error)?
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .run();
        tracing::info!(%address, "listening on http://{address}");
        Ok(Self {
            server,
            address,
            pool,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the server from outside (tests); SIGTERM and SIGINT also do.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped: on SIGTERM or SIGINT, stops accepting, lets
    /// in-flight requests finish, then closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
        self.pool.close();
        tracing::info!("stopped");
        outcome
    }
}

/// The seeded demo account has a published password: say so at every
/// production boot while it exists.
async fn warn_about_demo_account(pool: &Pool, login_allowed: bool) {
    let exists = match pool.get().await {
        Ok(mut conn) => crate::db::users::email_exists(&mut conn, auth::DEMO_EMAIL).await,
        Err(error) => {
            tracing::warn!(%error, "could not check for the demo account");
            return;
        }
    };
    match exists {
        Ok(true) if login_allowed => tracing::warn!(
            "the demo account ({}) exists and CONDUIT_ALLOW_DEMO_USER lets it log in: its password is public",
            auth::DEMO_EMAIL
        ),
        Ok(true) => tracing::warn!(
            "the demo account ({}) exists; its login is refused in production (CONDUIT_ALLOW_DEMO_USER=true allows it)",
            auth::DEMO_EMAIL
        ),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "could not check for the demo account"),
    }
}

/// Migrates on the dedicated connection (or, with migrate-on-start off,
/// only looks), then checks what the database holds against the binary.
async fn bring_schema_up_to_date(
    conn: diesel_async::AsyncPgConnection,
    settings: &Settings,
    known: &[migrations::KnownMigration],
    metrics: &Metrics,
) -> Result<(), StartupError> {
    // Read first, without the lock: most boots find nothing to apply, and
    // then skip the lock and the harness.
    let state = migrations::schema_state(&conn, known)
        .await
        .map_err(MigrationError::Database)?;
    let (unknown, modified) = if settings.migrate_on_start && !state.pending.is_empty() {
        let report = migrations::run_pending(
            conn,
            settings.migrations.clone(),
            settings.database.migration_locks,
        )
        .await?;
        metrics.set_schema_version(report.schema_version.as_deref());
        (report.unknown, report.modified)
    } else {
        metrics.set_schema_version(state.version());
        let shown = state.version().unwrap_or("none");
        if state.pending.is_empty() {
            tracing::info!(schema_version = shown, "schema up to date at {shown}");
        } else {
            tracing::warn!(
                pending = ?state.pending,
                "CONDUIT_MIGRATE_ON_START is off and migrations are pending: /ready answers 503 until `conduit migrate run` applies them"
            );
        }
        let modified =
            migrations::modified_migrations(&conn, &settings.migrations, &state.applied).await?;
        (state.unknown, modified)
    };
    check_schema(&unknown, &modified, settings.strict_schema)
}

/// Says what differs between the database's migrations and the binary's;
/// under CONDUIT_STRICT_SCHEMA, refuses to start instead.
fn check_schema(unknown: &[String], modified: &[String], strict: bool) -> Result<(), StartupError> {
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "the database has migrations this binary does not know: {} (a newer binary applied them)",
            unknown.join(", ")
        ));
    }
    if !modified.is_empty() {
        problems.push(format!(
            "applied migrations whose up.sql changed since they ran: {}",
            modified.join(", ")
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let message = problems.join("; ");
    if strict {
        return Err(StartupError::SchemaMismatch(message));
    }
    tracing::warn!(unknown = ?unknown, modified = ?modified, "{message}");
    Ok(())
}
