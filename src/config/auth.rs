//! Settings of sessions, the demo account and the throttling of logins,
//! registrations and password changes (docs/security.md explains the
//! throttle; each setting here says what it counts).

use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};

use super::durations::{between, shown, LONGEST, SECOND};
use super::{invalid, ConfigError};
use crate::auth::settings::AuthSettings;
use crate::auth::throttle::ThrottleSettings;

/// The most attempts a throttling budget may allow: far beyond any use
/// (a budget that large is throttling turned off by another name), and
/// within PostgreSQL's integers.
const MOST_ATTEMPTS: i64 = 1_000_000;

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// How long a session (a login) lasts, e.g. 30d, 12h.
    #[arg(long, env = "CONDUIT_SESSION_TTL", default_value = "30d",
          value_parser = between(SECOND, LONGEST), global = true)]
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
    #[arg(long, env = "CONDUIT_LOGIN_MAX_FAILURES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=MOST_ATTEMPTS), global = true)]
    pub login_max_failures: u32,

    /// The window failed logins (and registrations) are counted in.
    #[arg(long, env = "CONDUIT_LOGIN_FAILURE_WINDOW", default_value = "15m",
          value_parser = between(SECOND, LONGEST), global = true)]
    pub login_failure_window: Duration,

    /// The longest delay the backoff asks for between attempts, once an
    /// account, an address or an address's registrations have used their
    /// budget: 1s, 2s, 4s, ... up to this (at most the window).
    #[arg(long, env = "CONDUIT_LOGIN_MAX_BACKOFF", default_value = "1m",
          value_parser = between(SECOND, LONGEST), global = true)]
    pub login_max_backoff: Duration,

    /// Registrations allowed per client address within
    /// CONDUIT_LOGIN_FAILURE_WINDOW before its backoff starts; 0 turns the
    /// limit off.
    #[arg(long, env = "CONDUIT_REGISTRATIONS_PER_ADDRESS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=MOST_ATTEMPTS), global = true)]
    pub registrations_per_address: u32,

    /// Password changes (PUT /api/user with a password) allowed per session
    /// within CONDUIT_LOGIN_FAILURE_WINDOW before its backoff starts; a
    /// user gets twice it for all sessions together; 0 turns the limit off.
    #[arg(long, env = "CONDUIT_PASSWORD_CHANGES_PER_SESSION", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=MOST_ATTEMPTS), global = true)]
    pub password_changes_per_session: u32,

    /// Passwords that may wait to be hashed, at most 100000; when full,
    /// logins and registrations answer 503 with Retry-After at once
    /// (default: 32 per core).
    #[arg(long, env = "CONDUIT_HASH_QUEUE_LIMIT", value_parser = clap::value_parser!(u32).range(1..=100_000), global = true)]
    pub hash_queue_limit: Option<u32>,
}

impl AuthArgs {
    pub fn settings(&self, demo_login_allowed: bool) -> Result<AuthSettings, ConfigError> {
        // A delay longer than the window would outlive the count it
        // comes from.
        if self.login_max_backoff > self.login_failure_window {
            return Err(invalid(
                "CONDUIT_LOGIN_MAX_BACKOFF",
                format!(
                    "must be at most CONDUIT_LOGIN_FAILURE_WINDOW ({}; got {})",
                    shown(self.login_failure_window),
                    shown(self.login_max_backoff)
                ),
            ));
        }
        Ok(AuthSettings {
            session_ttl: self.session_ttl,
            throttle: ThrottleSettings {
                max_failures: self.login_max_failures,
                window: self.login_failure_window,
                max_backoff: self.login_max_backoff,
                registrations_per_address: self.registrations_per_address,
                password_changes_per_session: self.password_changes_per_session,
            },
            demo_login_allowed: demo_login_allowed || self.allow_demo_user,
        })
    }
}
