//! `conduit serve` (the default): boot, then serve until stopped.

use std::process::ExitCode;

use super::CommandError;
use crate::config::SettingsArgs;
use crate::shutdown::StopSignals;
use crate::startup::Application;

pub async fn run(args: &SettingsArgs) -> Result<ExitCode, CommandError> {
    let settings = args.settings()?;
    let mut signals = StopSignals::listen();
    let application = tokio::select! {
        built = Application::build(settings) => built?,
        signal = signals.next() => {
            tracing::info!(signal, "stopping during boot, before serving");
            // A migration thread may be waiting for a lock, and the runtime
            // would wait for it: exit now. PostgreSQL rolls back what an
            // unfinished migration began when its connection closes.
            std::process::exit(0);
        }
    };
    application.stop_on_signal(signals);
    application.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}
