//! Logging: the tracing subscriber, and one log line per request.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::client_faults::DemoteClientFaults;
use crate::config::LogFormat;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global subscriber. `RUST_LOG` filters; the default is info.
pub fn init(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal());
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(DemoteClientFaults(
                output
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .try_init(),
        LogFormat::Pretty => registry.with(DemoteClientFaults(output)).try_init(),
    };
    // A second init (in tests) keeps the first subscriber.
    let _ = result;
}

/// Gives every request an id (the client's `x-request-id` when it is sane,
/// else a new one), echoes it, and logs one line when the request ends:
/// method, route pattern, status, latency. Never headers or bodies, so
/// tokens and passwords cannot reach the logs.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let method = method_label(request.method());
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", request_id = %request_id);

    let outcome = next.call(request).instrument(span.clone()).await;

    let (route, status) = match &outcome {
        Ok(response) => (
            response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "<unmatched>".to_owned()),
            response.status().as_u16(),
        ),
        Err(error) => (
            "<unmatched>".to_owned(),
            error.as_response_error().status_code().as_u16(),
        ),
    };
    let elapsed = started.elapsed();
    macro_rules! request_line {
        ($level:ident) => {
            tracing::$level!(
                request_id = %request_id,
                method = %method,
                route = %route,
                status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "{method} {route} {status}"
            )
        };
    }
    // Orchestrators probe every few seconds, forever: a probe that passes
    // would bury the requests in the log, one that fails is worth a line.
    // The line carries the id itself rather than being logged inside the
    // request's span: the JSON formatter would read the span's fields back
    // from their text for it, a fifth of GET /api/user's instructions with
    // the rest of the line (docs/benchmarks.md). What the handler logs is
    // still inside the span.
    let passing_probe = status < 400 && matches!(route.as_str(), "/health" | "/ready");
    if passing_probe {
        request_line!(debug)
    } else {
        request_line!(info)
    }
    if let Some(state) = state {
        state
            .metrics
            .observe_request(method, &route, status, elapsed.as_secs_f64());
    }
    let mut response = outcome?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// The method as a label: one of a fixed set, so that made-up methods
/// (any token is a valid HTTP method) cannot grow the metrics or the logs
/// without bound.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// A new request id: unique in this process (a counter) and across
/// processes (a random prefix drawn once), without asking the operating
/// system for randomness on every request as a random UUID does.
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn is_sane_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}
