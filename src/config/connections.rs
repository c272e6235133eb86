//! Settings of the clients' connections: which proxies name the client,
//! how many connections a client and the process may hold, how long a
//! body may take.

use std::time::Duration;

use clap::Args;

use super::durations::{between, LONGEST, MILLISECOND};
use super::{invalid, ConfigError};
use crate::client_address::TrustedProxies;
use crate::connections::ConnectionSettings;

#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For
    /// or Forwarded header names the client; from any other peer those
    /// headers are ignored. None by default: the TCP peer is the client.
    #[arg(
        long,
        env = "CONDUIT_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = proxy,
        global = true
    )]
    pub trusted_proxies: Vec<String>,

    /// Longest a client may take to send a request's body, from the end
    /// of its headers (then 408 and the connection is closed).
    #[arg(long, env = "CONDUIT_BODY_TIMEOUT", default_value = "10s",
          value_parser = between(MILLISECOND, LONGEST), global = true)]
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
}

impl ConnectionArgs {
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
        TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|problem| invalid("CONDUIT_TRUSTED_PROXIES", problem))
    }

    pub fn settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            body_timeout: self.body_timeout,
            max_per_address: self.max_connections_per_address,
            max_total: self.max_connections,
        }
    }
}

/// Checked as clap reads it, so that the error names the flag; an empty
/// entry (a stray comma) is left for [`TrustedProxies::parse`] to skip.
fn proxy(value: &str) -> Result<String, String> {
    TrustedProxies::parse(&[value])?;
    Ok(value.trim().to_owned())
}
