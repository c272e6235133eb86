//! The HTTP server: actix-server accepting, actix-http speaking HTTP/1.1,
//! the app answering. Assembled here rather than by actix-web's
//! `HttpServer` for two things it cannot do: refuse a connection before
//! it holds a descriptor for long (the gate, src/connections/), and
//! answer `Expect: 100-continue` with the final status when the body
//! would be refused anyway, instead of asking the client to send it.

use std::fmt;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use actix_http::body::{BoxBody, MessageBody};
use actix_http::{
    Extensions, HttpMessage as _, HttpService, KeepAlive, Protocol, Request, Response,
};
use actix_server::Server;
use actix_service::{
    apply_fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt as _,
};
use actix_web::dev::AppConfig;
use actix_web::ResponseError;
use futures_core::future::LocalBoxFuture;

use crate::connections::ConnectionGate;
use crate::extract;
use crate::socket_deadlines::{DeadlineSocket, RequestPhase};

/// Every request's headers must arrive within this of their first byte
/// (actix-web's default for the first request of a connection).
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection may take to flush and shut down.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What the server needs besides the app.
pub struct ServerOptions {
    pub gate: ConnectionGate,
    pub workers: usize,
    pub shutdown_timeout: Duration,
}

/// Serves `app` (built once per worker) on `listener`.
pub fn serve<F, I, S, B>(
    listener: TcpListener,
    options: ServerOptions,
    app: F,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let address = listener.local_addr()?;
    let builder = actix_server::ServerBuilder::default()
        .workers(options.workers)
        .max_concurrent_connections(options.gate.per_worker(options.workers))
        .shutdown_timeout(whole_seconds_up(options.shutdown_timeout))
        // The signals are ours (shutdown.rs): /ready turns 503 before
        // the listener closes.
        .disable_signals();
    let graceful = builder.graceful_shutdown_signal();
    let gate = options.gate;
    let builder = builder.listen("conduit", listener, move || {
        let graceful = graceful.clone();
        let app = apply_fn_factory(
            app()
                .into_factory()
                .map_err(|error| error.into().error_response()),
            answer_marking_phase,
        );
        let http = HttpService::build()
            .on_connect_ext(|io: &DeadlineSocket, data: &mut Extensions| {
                data.insert(io.phase());
            })
            .graceful_shutdown_signal(move || {
                let signal = graceful.clone();
                async move { signal.notified().await }
            })
            .keep_alive(KeepAlive::default())
            .client_request_timeout(REQUEST_HEAD_TIMEOUT)
            .client_disconnect_timeout(DISCONNECT_TIMEOUT)
            .local_addr(address)
            .expect(fn_service(answer_expectation))
            .finish(map_config(app, move |_| {
                AppConfig::__priv_test_new(false, address.to_string(), address)
            }));
        let http = fn_service(|io: actix_web::rt::net::TcpStream| async move {
            let peer = io.peer_addr().ok();
            Ok((
                DeadlineSocket::new(io, REQUEST_HEAD_TIMEOUT),
                Protocol::Http1,
                peer,
            ))
        })
        .and_then(http);
        let gate = gate.clone();
        apply_fn_factory(
            http,
            move |stream: actix_web::rt::net::TcpStream, service| {
                let peer = stream.peer_addr().ok().map(|peer| peer.ip());
                let served: LocalBoxFuture<'static, _> = match gate.admit(peer) {
                    Ok(admitted) => {
                        let connection = service.call(stream);
                        Box::pin(async move {
                            let outcome = connection.await;
                            drop(admitted);
                            outcome
                        })
                    }
                    Err(refusal) => {
                        refuse(stream, refusal.response());
                        Box::pin(async { Ok(()) })
                    }
                };
                served
            },
        )
    })?;
    Ok(builder.run())
}

/// Tells the connection's socket (src/socket_deadlines.rs) when the app
/// starts and ends each request.
fn answer_marking_phase<A>(
    request: Request,
    app: &A,
) -> LocalBoxFuture<'static, Result<A::Response, A::Error>>
where
    A: Service<Request>,
    A::Future: 'static,
{
    let phase = request.conn_data::<Rc<RequestPhase>>().cloned();
    if let Some(phase) = &phase {
        phase.request_started();
    }
    let answer = app.call(request);
    Box::pin(async move {
        let answer = answer.await;
        if let Some(phase) = phase {
            phase.request_answered();
        }
        answer
    })
}

/// Writes `answer` if the socket takes it at once, then closes. Never
/// waits: a client that does not read gets nothing but the close. What
/// the client already sent is read first, so that the close is not a
/// reset that could destroy the answer on its way. Done on the plain
/// socket (non-blocking already): the runtime's readiness for a socket it
/// has just been given says "not yet".
fn refuse(stream: actix_web::rt::net::TcpStream, answer: &[u8]) {
    use std::io::{Read, Write};

    let Ok(mut stream) = stream.into_std() else {
        return;
    };
    let mut discard = [0u8; 4096];
    while matches!(stream.read(&mut discard), Ok(n) if n > 0) {}
    let _ = stream.write(answer);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// `Expect: 100-continue`: a body that would be refused is refused now,
/// with the answer the request would get after sending it.
async fn answer_expectation(request: Request) -> Result<Request, Response<BoxBody>> {
    match extract::refusal_before_body(request.headers()) {
        None => Ok(request),
        Some(error) => {
            // The app's request log never sees this request.
            tracing::info!(
                method = %crate::telemetry::method_label(request.method()),
                status = error.status_code().as_u16(),
                "refused before 100 Continue"
            );
            let mut response = error.error_response();
            // The body will not be read: the connection cannot be reused.
            response
                .head_mut()
                .set_connection_type(actix_http::ConnectionType::Close);
            Err(response.into())
        }
    }
}

/// actix takes the shutdown timeout in whole seconds: rounded up, so that
/// 1900ms is not cut to 1s, nor 500ms to none.
fn whole_seconds_up(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shutdown_timeout_is_rounded_up_to_whole_seconds() {
        assert_eq!(whole_seconds_up(Duration::from_millis(1900)), 2);
        assert_eq!(whole_seconds_up(Duration::from_millis(500)), 1);
        assert_eq!(whole_seconds_up(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds_up(Duration::ZERO), 0);
    }
}
