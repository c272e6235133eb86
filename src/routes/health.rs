//! Liveness, readiness and metrics, for orchestrators and Prometheus.

use std::sync::atomic::Ordering;

use crate::routes::Routes;
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::migrations::schema_state;
use crate::db::DbError;
use crate::state::AppState;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(health).service(ready).service(render_metrics);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    schema_version: Option<String>,
    pending_migrations: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unknown_migrations: Vec<String>,
}

/// The process is alive; says nothing about the database.
#[utoipa::path(
    tag = "Operations",
    responses((status = 200, description = "Alive", example = json!({"status": "ok"})))
)]
#[get("/health")]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and no migration is pending.
#[utoipa::path(
    tag = "Operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Database unavailable, migrations pending, or shutting down", body = Readiness),
    )
)]
#[get("/ready")]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(Readiness {
            status: "draining",
            reason: Some("shutting down: still serving, about to stop accepting".into()),
            schema_version: None,
            pending_migrations: Vec::new(),
            unknown_migrations: Vec::new(),
        });
    }
    let unavailable = |reason: String| {
        HttpResponse::ServiceUnavailable().json(Readiness {
            status: "unavailable",
            reason: Some(reason),
            schema_version: None,
            pending_migrations: Vec::new(),
            unknown_migrations: Vec::new(),
        })
    };
    let schema = state
        .db
        .run(async |conn| {
            schema_state(conn, &state.migrations)
                .await
                .map_err(DbError::Query)
        })
        .await;
    let schema = match schema {
        Ok(schema) => schema,
        // The database's own words name users, databases and hosts: for
        // the log, not for whoever can reach /ready.
        Err(error) => {
            tracing::warn!(%error, "/ready: database unavailable");
            return unavailable("database unavailable".into());
        }
    };
    state.metrics.set_schema_version(schema.version());
    state
        .metrics
        .set_migrations_out_of_order(schema.out_of_order.len());
    let (status, label, reason) = if schema.pending.is_empty() {
        (StatusCode::OK, "ready", None)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "pending_migrations",
            Some(format!(
                "migrations pending: {} (run `conduit migrate run`)",
                schema.pending.join(", ")
            )),
        )
    };
    HttpResponse::build(status).json(Readiness {
        status: label,
        reason,
        schema_version: schema.version().map(str::to_owned),
        pending_migrations: schema.pending,
        unknown_migrations: schema.unknown,
    })
}

/// Prometheus text exposition.
#[utoipa::path(
    tag = "Operations",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
async fn render_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(state.db.pool()))
}
