//! `conduit serve` (the default): boot, then serve until stopped.

use std::process::ExitCode;

use super::CommandError;
use crate::config::SettingsArgs;
use crate::startup::Application;

pub async fn run(args: &SettingsArgs) -> Result<ExitCode, CommandError> {
    let application = Application::build(args.settings()?).await?;
    application.stop_on_signal();
    application.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}
