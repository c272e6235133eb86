//! Settings from flags, the environment and `.env`, validated once at start.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};
use url::Url;

use crate::auth::throttle::ThrottleSettings;
use crate::db::migrations::{LockLimits, MigrationSet};
use crate::db::tls::{PgTls, TlsConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// How a pooled connection is checked before a request gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolRecycling {
    /// A `SELECT 1` round trip on every checkout: even a connection that
    /// died silently (no FIN reached us) is replaced before a request uses it.
    Verified,
    /// No round trip (the default): a connection the server closed (restart,
    /// failover, idle timeout) is still noticed and replaced; only a silently
    /// dead one fails its first request with 503, and every request saves a
    /// round trip (docs/benchmarks.md has the figures).
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting, as clap reads it. Each has an environment variable; a flag
/// given on the command line wins over it.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// PostgreSQL URL, e.g. postgres://user:password@localhost:5432/conduit.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "CONDUIT_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,

    /// development or production.
    #[arg(long = "env", env = "CONDUIT_ENV", value_enum, default_value_t = Environment::Development, global = true)]
    pub environment: Environment,

    /// Apply pending migrations before serving.
    #[arg(long, env = "CONDUIT_MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub migrate_on_start: bool,

    /// How long boot waits for the database to answer.
    #[arg(
        long,
        env = "CONDUIT_DB_WAIT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub db_wait_secs: u64,

    /// Maximum number of pooled connections.
    #[arg(long, env = "CONDUIT_DB_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub db_pool_size: u32,

    /// How long a request waits for a pooled connection before answering 503.
    #[arg(
        long,
        env = "CONDUIT_DB_ACQUIRE_TIMEOUT",
        default_value_t = 5,
        global = true
    )]
    pub db_acquire_timeout_secs: u64,

    /// verified or fast: whether a checkout first runs `SELECT 1`.
    #[arg(long, env = "CONDUIT_DB_RECYCLE", value_enum, default_value_t = PoolRecycling::Fast, global = true)]
    pub db_recycle: PoolRecycling,

    /// Longest a request's SQL statement may run before it is cancelled (503).
    #[arg(long, env = "CONDUIT_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub db_statement_timeout: Duration,

    /// How long a migration run waits for another process's migration lock.
    #[arg(
        long,
        env = "CONDUIT_MIGRATION_LOCK_WAIT_SECS",
        default_value_t = 300,
        global = true
    )]
    pub migration_lock_wait_secs: u64,

    /// How long a migration statement waits for a table lock before the
    /// migration fails (so it never blocks traffic queued behind it).
    #[arg(long, env = "CONDUIT_MIGRATION_LOCK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub migration_lock_timeout: Duration,

    /// Refuse to start when the database holds migrations this binary does
    /// not know, or applied migrations whose SQL has changed since.
    #[arg(long, env = "CONDUIT_STRICT_SCHEMA", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub strict_schema: bool,

    /// How long a stopping server lets in-flight requests finish.
    #[arg(
        long,
        env = "CONDUIT_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_secs: u64,

    /// How long a session (a login) lasts, e.g. 30d, 12h.
    #[arg(long, env = "CONDUIT_SESSION_TTL", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub session_ttl: Duration,

    /// Let the seeded demo account log in under production.
    #[arg(long, env = "CONDUIT_ALLOW_DEMO_USER", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub allow_demo_user: bool,

    /// Failed logins allowed per client address and per account within
    /// CONDUIT_LOGIN_FAILURE_WINDOW; 0 turns the limit off.
    #[arg(
        long,
        env = "CONDUIT_LOGIN_MAX_FAILURES",
        default_value_t = 10,
        global = true
    )]
    pub login_max_failures: u32,

    /// The window failed logins are counted in.
    #[arg(long, env = "CONDUIT_LOGIN_FAILURE_WINDOW", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub login_failure_window: Duration,

    /// Origins allowed to call the API from a browser, comma-separated
    /// (e.g. https://app.example.org). None: CORS stays off.
    #[arg(
        long,
        env = "CONDUIT_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// pretty or json (json by default in production).
    #[arg(long, env = "CONDUIT_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    #[command(flatten)]
    pub topology: TopologyArgs,

    /// Use the migrations in this directory instead of the embedded ones.
    /// For testing migration sets; operators never need it.
    #[arg(long, hide = true, global = true)]
    pub migrations_dir: Option<PathBuf>,
}

/// Settings for running several replicas behind a load balancer and a
/// connection pooler (docs/deploying.md).
#[derive(Debug, Clone, Args)]
pub struct TopologyArgs {
    /// PostgreSQL URL for migrations (default: DATABASE_URL). Migrations
    /// take a session advisory lock and run DDL: behind PgBouncer in
    /// transaction pooling, point this at PostgreSQL directly.
    #[arg(
        long,
        env = "CONDUIT_MIGRATION_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub migration_database_url: Option<String>,

    /// On SIGTERM or SIGINT, how long `/ready` answers 503 while requests
    /// are still served, before the server stops accepting and drains: a
    /// load balancer's health checks need that moment to take the replica
    /// out (e.g. 5s; 0s stops at once).
    #[arg(long, env = "CONDUIT_SHUTDOWN_READINESS_DELAY", default_value = "0s",
          value_parser = humantime::parse_duration, global = true)]
    pub shutdown_readiness_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DATABASE_URL is not set: export it, put it in .env (see .env.example), or pass --database-url")]
    MissingDatabaseUrl,
    #[error("DATABASE_URL is not a postgres:// URL: {0}")]
    UnparsableDatabaseUrl(#[from] url::ParseError),
    #[error("DATABASE_URL is not a postgres:// URL: {0}")]
    InvalidDatabaseUrl(String),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("CONDUIT_MIGRATION_DATABASE_URL: {0}")]
    MigrationUrl(Box<ConfigError>),
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub listen: String,
    pub environment: Environment,
    pub migrate_on_start: bool,
    pub strict_schema: bool,
    pub shutdown_timeout: Duration,
    pub shutdown_readiness_delay: Duration,
    pub migrations: MigrationSet,
    pub auth: AuthSettings,
    pub cors_origins: Vec<String>,
}

/// What the authentication extractors and the user routes need.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub session_ttl: Duration,
    pub throttle: ThrottleSettings,
    /// False in production unless CONDUIT_ALLOW_DEMO_USER=true.
    pub demo_login_allowed: bool,
}

/// Where to connect and how to secure it: the URL without `sslmode` and
/// `sslrootcert`, which became `tls`.
#[derive(Clone)]
pub struct Endpoint {
    url: Url,
    pub tls: PgTls,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    /// The requests' pool connects here (possibly through PgBouncer).
    pub requests: Endpoint,
    /// Migrations connect here: a real session (the advisory lock, DDL).
    pub migrations: Endpoint,
    pub wait: Duration,
    pub pool_size: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub recycling: PoolRecycling,
    pub migration_locks: LockLimits,
}

impl SettingsArgs {
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.environment {
            Environment::Production => LogFormat::Json,
            Environment::Development => LogFormat::Pretty,
        })
    }

    pub fn database(&self) -> Result<DatabaseSettings, ConfigError> {
        let raw = self
            .database_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .ok_or(ConfigError::MissingDatabaseUrl)?;
        let requests = Endpoint::parse(raw)?;
        let migrations = match self
            .topology
            .migration_database_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
        {
            Some(raw) => {
                Endpoint::parse(raw).map_err(|e| ConfigError::MigrationUrl(Box::new(e)))?
            }
            None => requests.clone(),
        };
        Ok(DatabaseSettings {
            requests,
            migrations,
            wait: Duration::from_secs(self.db_wait_secs),
            pool_size: self.db_pool_size,
            acquire_timeout: Duration::from_secs(self.db_acquire_timeout_secs.max(1)),
            statement_timeout: self.db_statement_timeout,
            recycling: self.db_recycle,
            migration_locks: LockLimits {
                migration_lock_wait: Duration::from_secs(self.migration_lock_wait_secs),
                table_lock_timeout: self.migration_lock_timeout,
            },
        })
    }

    pub fn migration_set(&self) -> MigrationSet {
        match &self.migrations_dir {
            Some(dir) => MigrationSet::Directory(dir.clone()),
            None => MigrationSet::Embedded,
        }
    }

    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Ok(Settings {
            database: self.database()?,
            listen: self.listen.clone(),
            environment: self.environment,
            migrate_on_start: self.migrate_on_start,
            strict_schema: self.strict_schema,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            shutdown_readiness_delay: self.topology.shutdown_readiness_delay,
            migrations: self.migration_set(),
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            auth: AuthSettings {
                session_ttl: self.session_ttl,
                throttle: ThrottleSettings {
                    max_failures: self.login_max_failures,
                    window: self.login_failure_window,
                },
                demo_login_allowed: self.environment == Environment::Development
                    || self.allow_demo_user,
            },
        })
    }
}

impl Endpoint {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        let mut url = Url::parse(raw.trim())?;
        if !matches!(url.scheme(), "postgres" | "postgresql") || url.host_str().is_none() {
            return Err(ConfigError::InvalidDatabaseUrl(format!(
                "expected postgres://user:password@host:port/database, got scheme {:?}",
                url.scheme()
            )));
        }
        let tls = PgTls::take_from_url(&mut url)?;
        Ok(Self { url, tls })
    }

    /// The URL to connect with, tagged with an application name so that
    /// `pg_stat_activity` (and a replica waiting on the migration lock) can
    /// tell who holds a connection.
    pub fn connection_url(&self, application_name: &str) -> String {
        let mut url = self.url.clone();
        if !url.query_pairs().any(|(key, _)| key == "application_name") {
            url.query_pairs_mut()
                .append_pair("application_name", application_name);
        }
        url.to_string()
    }

    /// host:port/database, for messages: never the password.
    pub fn display_target(&self) -> String {
        format!(
            "{}:{}{}",
            self.url.host_str().unwrap_or("?"),
            self.url.port().unwrap_or(5432),
            self.url.path()
        )
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("target", &self.display_target())
            .field("sslmode", &self.tls.mode().as_str())
            .finish()
    }
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("requests", &self.requests)
            .field("migrations", &self.migrations)
            .field("wait", &self.wait)
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("recycling", &self.recycling)
            .field("migration_locks", &self.migration_locks)
            .finish()
    }
}
