//! Every route the server registers, one module per resource. Routes are
//! registered through utoipa-actix-web, so a route without an OpenAPI
//! description does not compile.

mod articles;
pub mod health;
mod profiles;
mod tags;
mod users;
pub mod views;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::HttpResponse;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::UtoipaApp;

use crate::error::AppError;

/// Registers every documented route: the operator endpoints at the root,
/// the RealWorld API under `/api`. The server and the OpenAPI document
/// both come from here.
pub fn register<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.configure(health::configure)
        .service(utoipa_actix_web::scope("/api").configure(configure_api))
}

fn configure_api(cfg: &mut ServiceConfig) {
    users::configure(cfg);
    profiles::configure(cfg);
    articles::configure(cfg);
    tags::configure(cfg);
}

/// Anything no route matched: 404 in the API's error shape.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("route"))
}
