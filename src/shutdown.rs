//! The stop on SIGTERM or SIGINT: `/ready` turns 503 first, then the
//! server stops accepting and drains.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;

/// Spawns the task that waits for SIGTERM or SIGINT, sets `draining` (so
/// `/ready` answers 503) for `delay` while still serving, then stops the
/// server gracefully; a second signal cuts the delay short.
pub fn stop_on_signal(handle: ServerHandle, draining: Arc<AtomicBool>, delay: Duration) {
    tokio::spawn(async move {
        let signal = stop_signal().await;
        draining.store(true, Ordering::Relaxed);
        if !delay.is_zero() {
            tracing::info!(
                signal,
                delay_ms = delay.as_millis() as u64,
                "stopping: /ready answers 503 while requests are still served"
            );
            // A second signal (an impatient operator, an orchestrator
            // past its grace period) skips what is left of the delay.
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                again = stop_signal() => {
                    tracing::info!(signal = again, "stopping: a second signal ends the delay");
                }
            }
        }
        tracing::info!(signal, "stopping: no new connections, draining requests");
        handle.stop(true).await;
    });
}

/// Waits for SIGTERM or SIGINT; returns its name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "cannot listen for SIGTERM/SIGINT; stopping only when killed");
            std::future::pending().await
        }
    }
}
