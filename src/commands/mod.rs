//! The subcommands of the binary, one module each, each with a `run`.

pub mod healthcheck;
pub mod migrate;
pub mod plan;
pub mod serve;
pub mod settings_reference;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config::ConfigError;
use crate::db::migrations::MigrationError;
use crate::db::DatabaseUnreachable;
use crate::startup::StartupError;

/// Why a command failed; `main` prints it, with its causes, as one line.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    DatabaseUnreachable(#[from] DatabaseUnreachable),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error(transparent)]
    Plan(#[from] crate::db::migrations::plan::PlanError),
    #[error("server error")]
    Server(#[from] std::io::Error),
}

/// Runs the command the command line chose (`serve` when it chose none).
pub async fn run(cli: &Cli) -> Result<ExitCode, CommandError> {
    let args = &cli.settings;
    match cli.chosen_command() {
        Command::Serve => serve::run(args).await,
        Command::Migrate { action } => migrate::run(args, action.clone()).await,
        Command::Healthcheck => Ok(healthcheck::run(&args.server.listen).await),
        Command::SettingsReference => {
            print!("{}", settings_reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
    }
}
