//! Settings from flags, the environment and `.env`, validated once at start.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::throttle::ThrottleSettings;
use crate::client_address::TrustedProxies;
use crate::db::migrations::{LockLimits, MigrationSet};
use crate::db::tls::{PgTls, TlsConfigError};
use crate::db::url::{PgUrl, UrlError};

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

/// What sits between the pool and PostgreSQL, which decides how a
/// request's statements must be grouped (docs/deploying.md, "PgBouncer").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolMode {
    /// PostgreSQL itself, or a pooler in session mode (the default): a
    /// connection is one server session for as long as it lives.
    Session,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`):
    /// the server session is ours only inside a transaction, so every
    /// request runs its statements in one, with `statement_timeout` set
    /// for that transaction and no statement kept prepared beyond it.
    Transaction,
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
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = secret)]
    pub database_url: Option<SecretString>,

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
        default_value = "30s",
        value_parser = parse_duration,
        global = true
    )]
    pub db_wait_secs: Duration,

    /// Maximum number of pooled connections.
    #[arg(long, env = "CONDUIT_DB_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub db_pool_size: u32,

    /// How long a request waits for a pooled connection before answering 503.
    #[arg(
        long,
        env = "CONDUIT_DB_ACQUIRE_TIMEOUT",
        default_value = "5s",
        value_parser = parse_duration,
        global = true
    )]
    pub db_acquire_timeout_secs: Duration,

    /// verified or fast: whether a checkout first runs `SELECT 1`.
    #[arg(long, env = "CONDUIT_DB_RECYCLE", value_enum, default_value_t = PoolRecycling::Fast, global = true)]
    pub db_recycle: PoolRecycling,

    /// session or transaction: `transaction` behind PgBouncer (or another
    /// pooler) in transaction pooling mode.
    #[arg(long, env = "CONDUIT_DB_POOL_MODE", value_enum, default_value_t = PoolMode::Session, global = true)]
    pub db_pool_mode: PoolMode,

    /// Longest a request's SQL statement may run before it is cancelled (503).
    #[arg(long, env = "CONDUIT_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub db_statement_timeout: Duration,

    /// How long a migration run waits for another process's migration lock.
    #[arg(
        long,
        env = "CONDUIT_MIGRATION_LOCK_WAIT_SECS",
        default_value = "300s",
        value_parser = parse_duration,
        global = true
    )]
    pub migration_lock_wait_secs: Duration,

    /// How long a migration statement waits for a table lock before the
    /// migration fails (so it never blocks traffic queued behind it).
    #[arg(long, env = "CONDUIT_MIGRATION_LOCK_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub migration_lock_timeout: Duration,

    /// How many times a migration that gave up on a table lock (see
    /// CONDUIT_MIGRATION_LOCK_TIMEOUT) is tried again, with exponential
    /// backoff and jitter; each failure names the sessions that blocked it.
    #[arg(long, env = "CONDUIT_MIGRATION_LOCK_RETRIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=20), global = true)]
    pub migration_lock_retries: u32,

    /// Apply pending migrations whose version sorts below the newest
    /// applied one (merged from a branch after it ran), in version order,
    /// instead of refusing to migrate.
    #[arg(long = "allow-out-of-order", env = "CONDUIT_MIGRATION_ALLOW_OUT_OF_ORDER", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), global = true)]
    pub allow_out_of_order: bool,

    /// Refuse to start when the database holds migrations this binary does
    /// not know, or applied migrations whose SQL has changed since.
    #[arg(long, env = "CONDUIT_STRICT_SCHEMA", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub strict_schema: bool,

    /// How long a stopping server lets in-flight requests finish.
    #[arg(
        long,
        env = "CONDUIT_SHUTDOWN_TIMEOUT_SECS",
        default_value = "30s",
        value_parser = parse_duration,
        global = true
    )]
    pub shutdown_timeout_secs: Duration,

    /// How long a session (a login) lasts, e.g. 30d, 12h.
    #[arg(long, env = "CONDUIT_SESSION_TTL", default_value = "30d", value_parser = parse_duration, global = true)]
    pub session_ttl: Duration,

    /// Let the seeded demo account log in under production.
    #[arg(long, env = "CONDUIT_ALLOW_DEMO_USER", default_value_t = false, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), global = true)]
    pub allow_demo_user: bool,

    /// Failed logins allowed per account from one client address within
    /// CONDUIT_LOGIN_FAILURE_WINDOW (then 429 until it ends); also how many
    /// an account takes from all addresses, and a tenth of what an address
    /// takes for all accounts, before their backoff starts; 0 turns login
    /// throttling off.
    #[arg(
        long,
        env = "CONDUIT_LOGIN_MAX_FAILURES",
        default_value_t = 10,
        global = true
    )]
    pub login_max_failures: u32,

    /// The window failed logins (and registrations) are counted in.
    #[arg(long, env = "CONDUIT_LOGIN_FAILURE_WINDOW", default_value = "15m", value_parser = parse_duration, global = true)]
    pub login_failure_window: Duration,

    /// The longest delay the backoff asks for between attempts, once an
    /// account, an address or an address's registrations have used their
    /// budget: 1s, 2s, 4s, ... up to this.
    #[arg(long, env = "CONDUIT_LOGIN_MAX_BACKOFF", default_value = "1m", value_parser = parse_duration, global = true)]
    pub login_max_backoff: Duration,

    /// Registrations allowed per client address within
    /// CONDUIT_LOGIN_FAILURE_WINDOW before its backoff starts; 0 turns the
    /// limit off.
    #[arg(
        long,
        env = "CONDUIT_REGISTRATIONS_PER_ADDRESS",
        default_value_t = 30,
        global = true
    )]
    pub registrations_per_address: u32,

    /// Password changes (PUT /api/user with a password) allowed per session
    /// within CONDUIT_LOGIN_FAILURE_WINDOW before its backoff starts; a
    /// user gets twice it for all sessions together; 0 turns the limit off.
    #[arg(
        long,
        env = "CONDUIT_PASSWORD_CHANGES_PER_SESSION",
        default_value_t = 5,
        global = true
    )]
    pub password_changes_per_session: u32,

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

    // ---- Hardening: limits against hostile or unlucky clients ----
    /// Passwords that may wait to be hashed; when full, logins and
    /// registrations answer 503 with Retry-After at once (default: 32 per
    /// core).
    #[arg(long, env = "CONDUIT_HASH_QUEUE_LIMIT", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub hash_queue_limit: Option<u32>,

    /// Proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For
    /// or Forwarded header names the client; from any other peer those
    /// headers are ignored. None by default: the TCP peer is the client.
    #[arg(
        long,
        env = "CONDUIT_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<String>,

    /// Longest a client may take to send a request's body, from the end
    /// of its headers (then 408 and the connection is closed).
    #[arg(long, env = "CONDUIT_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub body_timeout: Duration,

    /// Open connections one client address may hold (an IPv6 client: one
    /// /64); beyond it a new connection is answered 429 and closed. Trusted
    /// proxies are not capped: they carry many clients. 0 turns it off.
    #[arg(
        long,
        env = "CONDUIT_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256,
        global = true
    )]
    pub max_connections_per_address: u32,

    /// Open connections for the whole process; beyond it a new connection
    /// is answered 503 and closed. Default: what the descriptor limit
    /// (RLIMIT_NOFILE) leaves after the database pool and a reserve.
    #[arg(long, env = "CONDUIT_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections: Option<u32>,

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
        hide_env_values = true,
        value_parser = secret
    )]
    pub migration_database_url: Option<SecretString>,

    /// On SIGTERM or SIGINT, how long `/ready` answers 503 while requests
    /// are still served, before the server stops accepting and drains: a
    /// load balancer's health checks need that moment to take the replica
    /// out (e.g. 5s; 0s stops at once; at most 5m). A second signal
    /// during the delay ends it.
    #[arg(long, env = "CONDUIT_SHUTDOWN_READINESS_DELAY", default_value = "0s",
          value_parser = parse_readiness_delay, global = true)]
    pub shutdown_readiness_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DATABASE_URL is not set: export it, put it in .env (see .env.example), or pass --database-url")]
    MissingDatabaseUrl,
    #[error("DATABASE_URL {0}")]
    DatabaseUrl(#[from] UrlError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("CONDUIT_MIGRATION_DATABASE_URL")]
    MigrationUrl(#[source] Box<ConfigError>),
    /// A setting whose value parses but cannot work: refused at start,
    /// named, rather than failing later inside a request.
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub listen: String,
    pub environment: Environment,
    pub migrate_on_start: bool,
    pub strict_schema: bool,
    pub allow_out_of_order: bool,
    pub shutdown_timeout: Duration,
    pub shutdown_readiness_delay: Duration,
    pub migrations: MigrationSet,
    pub auth: AuthSettings,
    pub cors_origins: Vec<String>,
    // Hardening.
    pub hash_queue_limit: Option<u32>,
    pub trusted_proxies: TrustedProxies,
    pub connections: ConnectionSettings,
}

/// Limits on what a connection may hold on to (src/connections.rs).
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub body_timeout: Duration,
    /// 0: no cap per address.
    pub max_per_address: u32,
    /// None: derived from the descriptor limit at start.
    pub max_total: Option<u32>,
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
    url: PgUrl,
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
    pub pool_mode: PoolMode,
    pub migration_locks: LockLimits,
    /// `conduit@<newest known migration>` on every connection (pool and
    /// migrations): which release holds it (db/application_name.rs).
    pub application_name: String,
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
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|url| !url.trim().is_empty())
            .ok_or(ConfigError::MissingDatabaseUrl)?;
        let requests = Endpoint::parse(raw)?;
        let migrations = match self
            .topology
            .migration_database_url
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|url| !url.trim().is_empty())
        {
            Some(raw) => {
                Endpoint::parse(raw).map_err(|e| ConfigError::MigrationUrl(Box::new(e)))?
            }
            // Behind a transaction pooler the session advisory lock and
            // the DDL of migrations cannot work: no silent fallback.
            None if self.db_pool_mode == PoolMode::Transaction => {
                return Err(invalid(
                    "CONDUIT_MIGRATION_DATABASE_URL",
                    "must be set when CONDUIT_DB_POOL_MODE=transaction: migrations need a \
                     session of their own (an advisory lock, DDL), so point it at PostgreSQL \
                     directly, not at the pooler",
                ));
            }
            None => requests.clone(),
        };
        Ok(DatabaseSettings {
            requests,
            migrations,
            wait: self.db_wait_secs,
            pool_size: self.db_pool_size,
            acquire_timeout: self.db_acquire_timeout_secs,
            statement_timeout: self.db_statement_timeout,
            recycling: self.db_recycle,
            pool_mode: self.db_pool_mode,
            migration_locks: LockLimits {
                migration_lock_wait: self.migration_lock_wait_secs,
                table_lock_timeout: self.migration_lock_timeout,
                table_lock_retries: self.migration_lock_retries,
            },
            application_name: self.application_name()?,
        })
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

    pub fn migration_set(&self) -> MigrationSet {
        match &self.migrations_dir {
            Some(dir) => MigrationSet::Directory(dir.clone()),
            None => MigrationSet::Embedded,
        }
    }

    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.validate()?;
        Ok(Settings {
            database: self.database()?,
            listen: self.listen.clone(),
            environment: self.environment,
            migrate_on_start: self.migrate_on_start,
            strict_schema: self.strict_schema,
            allow_out_of_order: self.allow_out_of_order,
            shutdown_timeout: self.shutdown_timeout_secs,
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
                    max_backoff: self.login_max_backoff,
                    registrations_per_address: self.registrations_per_address,
                    password_changes_per_session: self.password_changes_per_session,
                },
                demo_login_allowed: self.environment == Environment::Development
                    || self.allow_demo_user,
            },
            hash_queue_limit: self.hash_queue_limit,
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)
                .map_err(|problem| invalid("CONDUIT_TRUSTED_PROXIES", problem))?,
            connections: ConnectionSettings {
                body_timeout: self.body_timeout,
                max_per_address: self.max_connections_per_address,
                max_total: self.max_connections,
            },
        })
    }
}

// ---- Validation of every setting at start (hardening) ----

/// The longest session or window a setting may ask for: far beyond any
/// real use, and far from the overflow of a timestamp plus it.
const LONGEST: Duration = Duration::from_secs(10 * 366 * 24 * 3600);
/// The most attempts a throttling budget may allow: far beyond any use
/// (a budget that large is throttling turned off by another name).
const MOST_ATTEMPTS: u32 = 1_000_000;
/// PostgreSQL takes its timeouts in whole milliseconds, as an int4.
const LONGEST_PG_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Every duration setting's syntax: a number with a unit (`500ms`, `5s`,
/// `15m`, `12h`, `30d`), or a bare number of seconds, which is what the
/// settings named `..._SECS` always took.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|error| format!("{value:?}: {error}"));
    }
    humantime::parse_duration(value)
        .map_err(|error| format!("{value:?} is not a duration like 5s, 15m, 12h or 30d: {error}"))
}

/// A readiness delay past a few minutes is a typo (`10years` was
/// accepted), and a replica that will not stop holds up every rollout.
fn parse_readiness_delay(value: &str) -> Result<Duration, String> {
    const LONGEST: Duration = Duration::from_secs(300);
    let delay = parse_duration(value)?;
    if delay > LONGEST {
        return Err(format!("{value:?} is longer than 5m"));
    }
    Ok(delay)
}

/// A value kept out of `Debug` (the database URL carries a password).
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        problem: problem.into(),
    }
}

fn shown(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(duration)
}

impl SettingsArgs {
    /// Refuses values that parse but would break the server later: a
    /// session that expires as it starts, a timeout PostgreSQL reads as
    /// "none", a CORS origin actix-cors panics on.
    fn validate(&self) -> Result<(), ConfigError> {
        let between = |name, value: Duration, least: Duration, most: Duration| {
            if value < least || value > most {
                Err(invalid(
                    name,
                    format!(
                        "must be between {} and {} (got {})",
                        shown(least),
                        shown(most),
                        shown(value)
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let ms = Duration::from_millis(1);
        let second = Duration::from_secs(1);
        between("CONDUIT_SESSION_TTL", self.session_ttl, second, LONGEST)?;
        between(
            "CONDUIT_LOGIN_FAILURE_WINDOW",
            self.login_failure_window,
            second,
            LONGEST,
        )?;
        // A delay longer than the window would outlive the count it
        // comes from.
        between(
            "CONDUIT_LOGIN_MAX_BACKOFF",
            self.login_max_backoff,
            second,
            self.login_failure_window,
        )?;
        // The counts are PostgreSQL integers.
        for (name, value) in [
            ("CONDUIT_LOGIN_MAX_FAILURES", self.login_max_failures),
            (
                "CONDUIT_REGISTRATIONS_PER_ADDRESS",
                self.registrations_per_address,
            ),
            (
                "CONDUIT_PASSWORD_CHANGES_PER_SESSION",
                self.password_changes_per_session,
            ),
        ] {
            if value > MOST_ATTEMPTS {
                return Err(invalid(
                    name,
                    format!("must be at most {MOST_ATTEMPTS} (got {value}; 0 turns it off)"),
                ));
            }
        }
        // 0 would switch PostgreSQL's timeout off, not make it immediate.
        between(
            "CONDUIT_DB_STATEMENT_TIMEOUT",
            self.db_statement_timeout,
            ms,
            LONGEST_PG_TIMEOUT,
        )?;
        between(
            "CONDUIT_MIGRATION_LOCK_TIMEOUT",
            self.migration_lock_timeout,
            ms,
            LONGEST_PG_TIMEOUT,
        )?;
        between(
            "CONDUIT_DB_ACQUIRE_TIMEOUT",
            self.db_acquire_timeout_secs,
            ms,
            LONGEST,
        )?;
        between(
            "CONDUIT_DB_WAIT_SECS",
            self.db_wait_secs,
            Duration::ZERO,
            LONGEST,
        )?;
        between(
            "CONDUIT_MIGRATION_LOCK_WAIT_SECS",
            self.migration_lock_wait_secs,
            Duration::ZERO,
            LONGEST,
        )?;
        between("CONDUIT_BODY_TIMEOUT", self.body_timeout, ms, LONGEST)?;
        between(
            "CONDUIT_SHUTDOWN_TIMEOUT_SECS",
            self.shutdown_timeout_secs,
            Duration::ZERO,
            LONGEST,
        )?;
        for origin in self
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
        {
            check_origin(origin).map_err(|problem| invalid("CONDUIT_CORS_ORIGINS", problem))?;
        }
        Ok(())
    }
}

/// An origin as browsers send it: scheme://host[:port], nothing else.
fn check_origin(origin: &str) -> Result<(), String> {
    let problem = || {
        format!("{origin:?} is not an origin like https://app.example.org (a scheme, a host, maybe a port; no wildcard, no path)")
    };
    let url = Url::parse(origin).map_err(|_| problem())?;
    let exact = url.origin().ascii_serialization() == origin;
    if !matches!(url.scheme(), "http" | "https") || !exact || origin.contains('*') {
        return Err(problem());
    }
    Ok(())
}

impl Endpoint {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        let (url, tls) = PgUrl::parse(raw)?;
        let tls = PgTls::from_parameters(&tls)?;
        Ok(Self { url, tls })
    }

    /// The URL to connect with, tagged with an application name so that
    /// `pg_stat_activity` (and a replica waiting on the migration lock) can
    /// tell who holds a connection. Ours replaces one the URL carries:
    /// contract migrations rely on every Conduit naming its release.
    pub fn connection_url(&self, application_name: &str) -> String {
        self.url.with_application_name(application_name)
    }

    /// The same server and credentials, another database (a scratch one).
    pub fn with_database(&self, database: &str) -> Endpoint {
        Endpoint {
            url: self.url.with_database(database),
            tls: self.tls.clone(),
        }
    }

    /// The database name of the URL.
    pub fn database_name(&self) -> &str {
        self.url.database_name()
    }

    /// Hosts, ports and database, for messages: never the user or the
    /// password.
    pub fn display_target(&self) -> String {
        self.url.target()
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
            .field("pool_mode", &self.pool_mode)
            .field("migration_locks", &self.migration_locks)
            .field("application_name", &self.application_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

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
    fn durations_take_units_or_bare_seconds() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(
            super::parse_duration("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            super::parse_duration("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert!(super::parse_duration("soon").is_err());
        assert!(super::parse_duration("-5").is_err());
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
}
