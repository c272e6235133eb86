use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use conduit::cli::Cli;
use conduit::error_chain::Chain;
use conduit::{commands, telemetry};

fn main() -> ExitCode {
    let dotenv = dotenvy::dotenv();
    let old_names = conduit::config::renamed::adopt_old_names();
    let cli = Cli::parse();
    telemetry::init(cli.settings.log_format());
    for old in old_names {
        tracing::warn!("{}", conduit::config::renamed::rename_hint(old));
    }
    if let Err(error) = &dotenv {
        if !error.not_found() {
            tracing::warn!(%error, "could not read .env");
        }
    }
    match actix_web::rt::System::new().block_on(commands::run(&cli)) {
        Ok(code) => code,
        Err(error) => {
            // In a terminal the plain line below is enough; elsewhere the
            // log collector gets it as a structured event too.
            let error = Chain(&error);
            if !std::io::stdout().is_terminal() {
                tracing::error!("{error}");
            }
            eprintln!("conduit: {error}");
            ExitCode::FAILURE
        }
    }
}
