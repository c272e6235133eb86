//! The command line: `conduit [serve]`, `conduit migrate ...`, `conduit healthcheck`.

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::SettingsArgs;

#[derive(Debug, Parser)]
#[command(name = "conduit", version, about = "The RealWorld Conduit API server")]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wait for the database, apply pending migrations, then serve (the default).
    Serve,
    /// Apply, inspect or roll back migrations, under the same lock as boot.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Ask the server at CONDUIT_LISTEN for /ready: exit 0 when ready, 1 otherwise.
    Healthcheck,
    /// Print docs/configuration.md, the settings reference, from these definitions.
    #[command(hide = true)]
    SettingsReference,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Run,
    /// List applied and pending migrations.
    Status {
        /// Exit with status 1 when any migration is pending.
        #[arg(long)]
        check: bool,
    },
    /// Roll back the most recently applied migration.
    Revert,
    /// Roll back the most recently applied migration and apply it again.
    Redo,
    /// Re-record the checksums of applied migrations whose up.sql changed
    /// (a harmless edit), printing each old and new checksum.
    Repair,
    /// Compare the live schema with the one the applied migrations make:
    /// one line per difference; exit 0 when there is none, 1 otherwise.
    Verify,
    /// Adopt a database that has the schema but no migration history:
    /// check that its schema is what the migrations up to VERSION make,
    /// then record them as applied without running them.
    Baseline {
        /// The newest migration version the database's schema already has.
        version: String,
    },
    /// Show what each pending migration would lock, rewrite and scan,
    /// measured on a scratch database; the live one is only read.
    Plan {
        /// text (a table) or json (the same fields, for scripts).
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Exit with status 3 when any statement is flagged as risky.
        #[arg(long)]
        fail_on_risk: bool,
    },
}

/// How `migrate plan` prints its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

impl Cli {
    /// The subcommand given, or `serve` when there is none.
    pub fn chosen_command(&self) -> &Command {
        self.command.as_ref().unwrap_or(&Command::Serve)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap checks flags, env names and defaults against each other only
    /// when a command line is parsed; this checks every one of them now.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
