//! The client's address: the TCP peer, or what a trusted proxy's
//! X-Forwarded-For or Forwarded header names (any client can write those,
//! so only CONDUIT_TRUSTED_PROXIES are believed).

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::error::AppError;
use crate::state::AppState;

/// `None` when the peer is unknown (a Unix socket, a test request).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequest for ClientAddress {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let peer = request.peer_addr().map(|a| a.ip());
        ready(match request.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(ClientAddress(
                state
                    .trusted_proxies
                    .client_address(peer, request.headers()),
            )),
            None => Err(AppError::internal(anyhow::anyhow!(
                "no application state registered"
            ))),
        })
    }
}
