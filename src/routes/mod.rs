//! Every route the server registers, collected from one module per resource.

pub mod health;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
}
