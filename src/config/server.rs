//! Settings of the HTTP server: where it listens, how it logs, who may
//! call it from a browser, how it stops.

use std::time::Duration;

use clap::{Args, ValueEnum};
use url::Url;

use super::durations::{between, parse_duration, LONGEST};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A replica that will not stop holds up every rollout: a readiness
/// delay past a few minutes is a typo (`10years` was accepted once).
const LONGEST_READINESS_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
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

    /// pretty or json (json by default in production).
    #[arg(long, env = "CONDUIT_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    /// Origins allowed to call the API from a browser, comma-separated
    /// (e.g. https://app.example.org). None: CORS stays off.
    #[arg(
        long,
        env = "CONDUIT_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = origin,
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// How long a stopping server lets in-flight requests finish.
    #[arg(
        long,
        alias = "shutdown-timeout-secs",
        env = "CONDUIT_SHUTDOWN_TIMEOUT",
        default_value = "30s",
        value_parser = between(Duration::ZERO, LONGEST),
        global = true
    )]
    pub shutdown_timeout: Duration,

    /// On SIGTERM or SIGINT, how long `/ready` answers 503 while requests
    /// are still served, before the server stops accepting and drains: a
    /// load balancer's health checks need that moment to take the replica
    /// out (e.g. 5s; 0s stops at once; at most 5m). A second signal
    /// during the delay ends it.
    #[arg(long, env = "CONDUIT_SHUTDOWN_READINESS_DELAY", default_value = "0s",
          value_parser = readiness_delay, global = true)]
    pub shutdown_readiness_delay: Duration,
}

impl ServerArgs {
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.environment {
            Environment::Production => LogFormat::Json,
            Environment::Development => LogFormat::Pretty,
        })
    }

    /// The origins given, without the empty entries a stray comma leaves.
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_origins
            .iter()
            .filter(|o| !o.is_empty())
            .cloned()
            .collect()
    }
}

fn readiness_delay(value: &str) -> Result<Duration, String> {
    let delay = parse_duration(value)?;
    if delay > LONGEST_READINESS_DELAY {
        return Err(format!("{value:?} is longer than 5m"));
    }
    Ok(delay)
}

/// An origin as browsers send it: scheme://host[:port], nothing else
/// (actix-cors panics on anything else).
fn origin(value: &str) -> Result<String, String> {
    let origin = value.trim();
    if origin.is_empty() {
        return Ok(String::new());
    }
    let problem = || {
        format!("{origin:?} is not an origin like https://app.example.org (a scheme, a host, maybe a port; no wildcard, no path)")
    };
    let url = Url::parse(origin).map_err(|_| problem())?;
    let exact = url.origin().ascii_serialization() == origin;
    if !matches!(url.scheme(), "http" | "https") || !exact || origin.contains('*') {
        return Err(problem());
    }
    Ok(origin.to_owned())
}
