//! Every route the server registers, one module per resource. Routes are
//! registered through utoipa-actix-web, so a route without an OpenAPI
//! description does not compile.

mod articles;
pub mod health;
mod profiles;
mod tags;
mod users;
pub mod views;

use actix_web::HttpResponse;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::AppError;

/// The operator endpoints, at the root.
pub fn configure_operations(cfg: &mut ServiceConfig) {
    health::configure(cfg);
}

/// The RealWorld API, mounted under `/api`.
pub fn configure_api(cfg: &mut ServiceConfig) {
    users::configure(cfg);
    profiles::configure(cfg);
    articles::configure(cfg);
    tags::configure(cfg);
}

/// Anything no route matched: 404 in the API's error shape.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("route"))
}
