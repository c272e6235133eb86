//! `conduit serve` (the default): boot, then serve until stopped.

use std::process::ExitCode;

use super::CommandError;
use crate::config::SettingsArgs;
use crate::startup::Application;

pub async fn run(args: &SettingsArgs) -> Result<ExitCode, CommandError> {
    let application = Application::build(args.settings()?).await?;
    let handle = application.handle();
    actix_web::rt::spawn(async move {
        let signal = stop_signal().await;
        tracing::info!(signal, "stopping: in-flight requests may finish");
        handle.stop(true).await;
    });
    application.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGTERM or SIGINT (Ctrl-C); both drain the same way: stop
/// accepting, let in-flight requests finish within the shutdown timeout.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
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
                tracing::error!(%error, "could not listen for SIGTERM/SIGINT; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
