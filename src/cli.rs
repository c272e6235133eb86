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
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// clap checks flags, env names and defaults against each other only
    /// when a command line is parsed; this checks every one of them now.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_settings_do_not_show_the_database_password_in_debug() {
        let cli = Cli::try_parse_from([
            "conduit",
            "--database-url",
            "postgres://conduit:s3cret-pw@db:5432/conduit",
        ])
        .unwrap();
        let settings = cli.settings.settings().unwrap();
        for shown in [format!("{cli:?}"), format!("{settings:?}")] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
        }
        assert!(settings
            .database
            .requests
            .connection_url("test")
            .contains("s3cret-pw"));
    }

    #[test]
    fn transaction_pool_mode_needs_a_direct_migration_url() {
        let settings = |extra: &[&str]| {
            let mut args = vec![
                "conduit",
                "--database-url",
                "postgres://conduit@pgbouncer:6432/conduit",
                "--db-pool-mode",
                "transaction",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).unwrap().settings.settings()
        };
        let refused = settings(&[]).unwrap_err().to_string();
        assert!(
            refused.starts_with("CONDUIT_MIGRATION_DATABASE_URL: must be set"),
            "{refused}"
        );
        let direct = settings(&[
            "--migration-database-url",
            "postgres://conduit@db:5432/conduit",
        ])
        .unwrap()
        .database;
        assert_eq!(direct.migrations.display_target(), "db:5432/conduit");
        assert_eq!(direct.requests.display_target(), "pgbouncer:6432/conduit");
    }

    #[test]
    fn a_value_that_cannot_work_is_refused_naming_its_flag() {
        for (flag, value) in [
            ("--session-ttl", "0s"),
            ("--db-statement-timeout", "0s"),
            ("--cors-origins", "https://app.example.org/path"),
            ("--login-max-failures", "2000000"),
            ("--trusted-proxies", "proxy.internal"),
            // Both size what is allocated up front.
            ("--db-pool-size", "4294967295"),
            ("--hash-queue-limit", "4294967295"),
        ] {
            let refused = Cli::try_parse_from(["conduit", flag, value])
                .unwrap_err()
                .to_string();
            assert!(refused.contains(flag), "{flag} {value}: {refused}");
        }
        let backoff = Cli::try_parse_from([
            "conduit",
            "--database-url",
            "postgres://db/conduit",
            "--login-max-backoff",
            "1h",
        ])
        .unwrap()
        .settings
        .settings()
        .unwrap_err()
        .to_string();
        assert!(
            backoff.starts_with("CONDUIT_LOGIN_MAX_BACKOFF: must be at most"),
            "{backoff}"
        );
    }

    #[test]
    fn the_old_names_of_renamed_durations_are_still_read() {
        let database = |flags: &[&str]| {
            let mut args = vec!["conduit", "--database-url", "postgres://db/conduit"];
            args.extend_from_slice(flags);
            Cli::try_parse_from(args)
                .unwrap()
                .settings
                .settings()
                .unwrap()
        };
        let defaults = database(&[]);
        assert_eq!(defaults.database.wait, std::time::Duration::from_secs(30));
        let old = database(&[
            "--db-wait-secs",
            "7",
            "--migration-lock-wait-secs",
            "8",
            "--shutdown-timeout-secs",
            "9",
        ]);
        assert_eq!(old.database.wait, std::time::Duration::from_secs(7));
        assert_eq!(
            old.database.migration_locks.migration_lock_wait,
            std::time::Duration::from_secs(8)
        );
        assert_eq!(old.shutdown_timeout, std::time::Duration::from_secs(9));
        let new = database(&["--db-wait", "2s"]);
        assert_eq!(new.database.wait, std::time::Duration::from_secs(2));
    }
}
