//! The stop on SIGTERM or SIGINT: `/ready` turns 503 first, then the
//! server stops accepting and drains.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM and SIGINT, listened for from the start of `serve`: a boot can
/// wait long (for the database, for another replica's migration lock), and
/// once a handler is installed the signal no longer ends the process by
/// itself (as PID 1 in a container it never did). Kept until the server
/// stops, so that no signal falls between two listeners.
pub struct StopSignals(Option<(Signal, Signal)>);

impl StopSignals {
    pub fn listen() -> Self {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGTERM/SIGINT; stopping only when killed");
                Self(None)
            }
        }
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    pub async fn next(&mut self) -> &'static str {
        match &mut self.0 {
            Some((term, int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            None => std::future::pending().await,
        }
    }
}

/// Spawns the task that waits for SIGTERM or SIGINT, sets `draining` (so
/// `/ready` answers 503) for `delay` while still serving, then stops the
/// server gracefully; a second signal cuts the delay short.
pub fn stop_on_signal(
    mut signals: StopSignals,
    handle: ServerHandle,
    draining: Arc<AtomicBool>,
    delay: Duration,
) {
    tokio::spawn(async move {
        let signal = signals.next().await;
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
                again = signals.next() => {
                    tracing::info!(signal = again, "stopping: a second signal ends the delay");
                }
            }
        }
        tracing::info!(signal, "stopping: no new connections, draining requests");
        handle.stop(true).await;
    });
}
