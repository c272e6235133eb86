//! Every route the server registers, one module per resource. Routes are
//! registered through [`Routes`], which takes only handlers with an OpenAPI
//! description: a route without one does not compile.

mod articles;
pub mod health;
mod profiles;
mod tags;
mod users;
pub mod views;

use actix_web::dev::{HttpServiceFactory, ServiceFactory, ServiceRequest};
use actix_web::{web, App};
use utoipa_actix_web::{OpenApiFactory, UtoipaApp};

/// What the route modules register their handlers on: the server's own
/// actix configuration, or utoipa-actix-web's, which also collects each
/// handler's OpenAPI description into the document. Either way only a
/// handler with a description (`OpenApiFactory`) can be registered, and
/// both go through the same `configure` functions in the same order.
pub trait Routes {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static;
}

impl Routes for web::ServiceConfig {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        web::ServiceConfig::service(self, factory)
    }
}

impl Routes for utoipa_actix_web::service_config::ServiceConfig<'_> {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        utoipa_actix_web::service_config::ServiceConfig::service(self, factory)
    }
}

/// Registers every route on a worker's app: the operator endpoints at the
/// root, the RealWorld API under `/api`. Without collecting the OpenAPI
/// document: actix builds its workers' apps one after the other, and
/// collecting it took most of each (docs/benchmarks.md, "Boot to /ready").
pub fn register<T>(app: App<T>) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.configure(health::configure)
        .service(web::scope("/api").configure(configure_api))
}

/// The same routes as [`register`], collecting the OpenAPI document.
pub fn register_documented<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.configure(|cfg| health::configure(cfg))
        .service(utoipa_actix_web::scope("/api").configure(|cfg| configure_api(cfg)))
}

fn configure_api(cfg: &mut impl Routes) {
    users::configure(cfg);
    profiles::configure(cfg);
    articles::configure(cfg);
    tags::configure(cfg);
}
