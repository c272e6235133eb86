use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use conduit::cli::{Cli, Command, MigrateAction};
use conduit::config::{ConfigError, SettingsArgs};
use conduit::db::migrations::{self, MigrationError};
use conduit::db::{self, DatabaseUnreachable};
use conduit::startup::{Application, StartupError};
use conduit::{healthcheck, telemetry};

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    DatabaseUnreachable(#[from] DatabaseUnreachable),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
}

fn main() -> ExitCode {
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init(cli.settings.log_format());
    if let Err(error) = &dotenv {
        if !error.not_found() {
            tracing::warn!(%error, "could not read .env");
        }
    }
    let outcome = actix_web::rt::System::new().block_on(run(&cli));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // In a terminal the plain line below is enough; elsewhere the
            // log collector gets it as a structured event too.
            if !std::io::stdout().is_terminal() {
                tracing::error!("{error}");
            }
            eprintln!("conduit: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let args = &cli.settings;
    match cli.command() {
        Command::Serve => {
            let application = Application::build(args.settings()?).await?;
            application.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { action } => migrate(args, *action).await,
        Command::Healthcheck => Ok(if healthcheck::is_ready(&args.listen).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
    }
}

async fn migrate(args: &SettingsArgs, action: MigrateAction) -> Result<ExitCode, Failure> {
    let database = args.database()?;
    let set = args.migration_set();
    let conn = db::wait_for_database(&database, "conduit-migrate").await?;
    let limits = database.migration_locks;
    match action {
        MigrateAction::Run => {
            migrations::run_pending(conn, set, limits).await?;
        }
        MigrateAction::Revert => {
            migrations::revert_last(conn, set, limits).await?;
        }
        MigrateAction::Redo => {
            migrations::redo_last(conn, set, limits).await?;
        }
        MigrateAction::Status { check } => {
            let known = set.catalog()?;
            let state = migrations::schema_state(&conn, &known)
                .await
                .map_err(MigrationError::Database)?;
            for migration in &known {
                let mark = if state.applied.contains(&migration.version) {
                    "applied"
                } else {
                    "pending"
                };
                println!("{mark:<8} {}", migration.name);
            }
            for version in &state.unknown {
                println!("{:<8} {version} (applied by a newer binary)", "unknown");
            }
            let modified = migrations::modified_migrations(&conn, &set, &state.applied).await?;
            for version in &modified {
                println!(
                    "{:<8} {version} (up.sql changed since it was applied)",
                    "modified"
                );
            }
            println!(
                "schema version: {}, {} pending",
                state.version().unwrap_or("none"),
                state.pending.len()
            );
            if check && !state.pending.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
