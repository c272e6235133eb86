//! Settings from flags, the environment and `.env`: one file per concern,
//! each value checked by its argument's parser as clap reads it, then
//! handed to the layer it belongs to as that layer's own settings type.

mod auth;
mod connections;
mod database;
pub mod durations;
mod migrations;
pub mod renamed;
mod server;

use std::time::Duration;

use clap::Args;

pub use auth::AuthArgs;
pub use connections::ConnectionArgs;
pub use database::DatabaseArgs;
pub use migrations::MigrationArgs;
pub use server::{Environment, LogFormat, ServerArgs};

use crate::auth::settings::AuthSettings;
use crate::client_address::TrustedProxies;
use crate::connections::ConnectionSettings;
use crate::db::endpoint::EndpointError;
use crate::db::migrations::{BootMigrations, MigrationSet};
use crate::db::settings::DatabaseSettings;
use crate::db::tls::TlsConfigError;
use crate::db::url::UrlError;

/// Every setting, as clap reads it. Each has an environment variable; a flag
/// given on the command line wins over it.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    #[command(flatten, next_help_heading = "Server")]
    pub server: ServerArgs,
    #[command(flatten, next_help_heading = "Database")]
    pub database: DatabaseArgs,
    #[command(flatten, next_help_heading = "Migrations")]
    pub migrations: MigrationArgs,
    #[command(flatten, next_help_heading = "Sessions and throttling")]
    pub auth: AuthArgs,
    #[command(flatten, next_help_heading = "Client connections")]
    pub connections: ConnectionArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DATABASE_URL is not set: export it, put it in .env (see .env.example), or pass --database-url")]
    MissingDatabaseUrl,
    #[error("DATABASE_URL {0}")]
    DatabaseUrl(#[source] UrlError),
    #[error(transparent)]
    Tls(TlsConfigError),
    #[error("CONDUIT_MIGRATION_DATABASE_URL")]
    MigrationUrl(#[source] Box<ConfigError>),
    /// A setting whose value parses but cannot work with the others:
    /// refused at start, named, rather than failing later in a request.
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
}

impl From<EndpointError> for ConfigError {
    fn from(error: EndpointError) -> Self {
        match error {
            EndpointError::Url(e) => ConfigError::DatabaseUrl(e),
            EndpointError::Tls(e) => ConfigError::Tls(e),
        }
    }
}

fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        problem: problem.into(),
    }
}

/// The settings of a serving process, each part in its layer's type.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub migrations: BootMigrations,
    pub listen: String,
    pub environment: Environment,
    pub shutdown_timeout: Duration,
    pub shutdown_readiness_delay: Duration,
    pub cors_origins: Vec<String>,
    pub auth: AuthSettings,
    pub hash_queue_limit: Option<u32>,
    pub trusted_proxies: TrustedProxies,
    pub connections: ConnectionSettings,
}

impl SettingsArgs {
    pub fn log_format(&self) -> LogFormat {
        self.server.log_format()
    }

    pub fn migration_set(&self) -> MigrationSet {
        self.migrations.set()
    }

    pub fn database(&self) -> Result<DatabaseSettings, ConfigError> {
        self.database
            .settings(self.migrations.lock_limits(), self.application_name()?)
    }

    /// Named after the newest migration of the set this process runs
    /// with: the embedded one, or `--migrations-dir`'s, whose versions are
    /// the ones its contract migrations compare with.
    fn application_name(&self) -> Result<String, ConfigError> {
        let known = self.migration_set().catalog().map_err(|e| {
            invalid(
                "--migrations-dir",
                crate::error_chain::Chain(&e).to_string(),
            )
        })?;
        Ok(crate::db::application_name::for_version(
            known.last().map(|m| m.version.as_str()),
        ))
    }

    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let server = &self.server;
        Ok(Settings {
            database: self.database()?,
            migrations: self.migrations.at_boot(),
            listen: server.listen.clone(),
            environment: server.environment,
            shutdown_timeout: server.shutdown_timeout,
            shutdown_readiness_delay: server.shutdown_readiness_delay,
            cors_origins: server.cors_origins(),
            auth: self
                .auth
                .settings(server.environment == Environment::Development)?,
            hash_queue_limit: self.auth.hash_queue_limit,
            trusted_proxies: self.connections.trusted_proxies()?,
            connections: self.connections.settings(),
        })
    }
}
