//! Login and registration throttling: which keys an attempt counts
//! against and with which budgets. The counts live in PostgreSQL
//! (`db::throttle`, migration 006), so every replica shares them.
//!
//! A login attempt counts from its start (before the password is hashed),
//! so parallel guesses cannot outrun the count; a correct password takes
//! its count back. With `max_failures` = N:
//! - **an account from one address**: N attempts per window, then 429 until
//!   the window ends (strict: this is where one client guesses);
//! - **an account from every address**: after N attempts per window, each
//!   address must wait between its attempts for that account, 1 s, 2 s,
//!   4 s, ... up to `max_backoff`. The account is never locked: its owner,
//!   from an address of their own, gets in at once, or after one delay of
//!   at most `max_backoff` if they mistyped, whatever others send;
//! - **an address for every account**: 10 N attempts per window (many users
//!   can share one address), then one attempt per delay, growing the same
//!   way.
//!
//! Registrations count per address: `registrations_per_address` per
//! window, then with the same backoff.
//!
//! An IPv6 "address" here is its /64: one subscriber's network, in which
//! a client can pick a new address for every attempt.

use std::net::IpAddr;
use std::time::Duration;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::db::throttle::{self, LoginBudgets};
pub use crate::db::throttle::{Admission, LoginKeys};

/// An address gets this many times an account's budget before its backoff
/// starts: many users share one (a NAT, an office, a proxy not listed as
/// trusted), and attempts in flight count, so ten users logging in at once
/// must not slow down the eleventh.
pub const ADDRESS_BUDGET_FACTOR: u32 = 10;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    /// Failed logins allowed per window for an account from one address;
    /// 0 turns login throttling off.
    pub max_failures: u32,
    /// The window every count is kept for.
    pub window: Duration,
    /// The longest delay the backoff asks for.
    pub max_backoff: Duration,
    /// Registrations per window from one address before the backoff
    /// starts; 0 turns registration throttling off.
    pub registrations_per_address: u32,
}

/// The throttle's settings; the state is in the database.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    settings: ThrottleSettings,
}

/// Where an attempt comes from when there is no peer address (a Unix
/// socket): all such attempts share one budget.
const NO_ADDRESS: &str = "unknown";

/// The budget's address: an IPv4 address, or an IPv6 address's /64, which
/// is what one subscriber gets and can pick addresses from at will.
fn address_text(address: Option<IpAddr>) -> String {
    match address {
        None => NO_ADDRESS.to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

impl LoginKeys {
    /// The keys of a login from `address` for `folded_email`, the email as
    /// the user lookup compares it (`domain::identity::folded`, whatever
    /// the database's locale): every spelling that finds an account shares
    /// its budget, and an unknown email is keyed the same way as a known one.
    pub fn new(address: Option<IpAddr>, folded_email: &str) -> Self {
        let account = folded_email;
        let address = address_text(address);
        Self {
            pair: format!("login-pair:{address} {account}"),
            account: format!("login-account:{account}"),
            address: format!("login-address:{address}"),
        }
    }
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self { settings }
    }

    fn login_budgets(&self) -> LoginBudgets {
        let n = self.settings.max_failures;
        LoginBudgets {
            window: self.settings.window,
            pair: n,
            account: n,
            address: n.saturating_mul(ADDRESS_BUDGET_FACTOR),
            max_backoff: self.settings.max_backoff,
        }
    }

    fn logins_throttled(&self) -> bool {
        self.settings.max_failures > 0
    }

    /// Starts a login attempt: counted at once, before the password is
    /// checked, or refused (not counted for the account) with how long to
    /// wait.
    pub async fn begin_login(
        &self,
        conn: &mut AsyncPgConnection,
        keys: &LoginKeys,
    ) -> QueryResult<Admission> {
        if !self.logins_throttled() {
            return Ok(Admission::Admitted);
        }
        throttle::begin_login(conn, keys, &self.login_budgets()).await
    }

    /// The attempt had the right password: it takes its count back, and
    /// the account's count from this address is cleared.
    pub async fn login_succeeded(
        &self,
        conn: &mut AsyncPgConnection,
        keys: &LoginKeys,
    ) -> QueryResult<()> {
        if !self.logins_throttled() {
            return Ok(());
        }
        throttle::login_succeeded(conn, keys).await
    }

    /// The attempt could not be checked (the server was too busy to hash):
    /// it takes its count back; earlier failures stay.
    pub async fn login_not_checked(
        &self,
        conn: &mut AsyncPgConnection,
        keys: &LoginKeys,
    ) -> QueryResult<()> {
        if !self.logins_throttled() {
            return Ok(());
        }
        throttle::give_back_login(conn, keys).await
    }

    fn registration_key(address: Option<IpAddr>) -> String {
        format!("register-address:{}", address_text(address))
    }

    /// Starts a registration from `address`: counted, or refused with how
    /// long to wait.
    pub async fn begin_registration(
        &self,
        conn: &mut AsyncPgConnection,
        address: Option<IpAddr>,
    ) -> QueryResult<Admission> {
        let budget = self.settings.registrations_per_address;
        if budget == 0 {
            return Ok(Admission::Admitted);
        }
        throttle::begin_with_backoff(
            conn,
            &Self::registration_key(address),
            self.settings.window,
            budget,
            self.settings.max_backoff,
        )
        .await
    }

    /// The registration could not be carried out (the server was too busy
    /// to hash): it takes its count back.
    pub async fn registration_not_carried_out(
        &self,
        conn: &mut AsyncPgConnection,
        address: Option<IpAddr>,
    ) -> QueryResult<()> {
        if self.settings.registrations_per_address == 0 {
            return Ok(());
        }
        throttle::give_back(conn, &Self::registration_key(address)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_folded_email_and_the_address() {
        let here: IpAddr = "203.0.113.9".parse().unwrap();
        let keys = LoginKeys::new(Some(here), "alice@example.org");
        assert_eq!(keys.pair, "login-pair:203.0.113.9 alice@example.org");
        assert_eq!(keys.account, "login-account:alice@example.org");
        assert_eq!(keys.address, "login-address:203.0.113.9");
        assert_eq!(
            LoginKeys::new(None, "a@x.org").address,
            "login-address:unknown"
        );
        let v6: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
        assert_eq!(
            LoginKeys::new(Some(v6), "a@x.org").address,
            "login-address:2001:db8:1:2::/64",
            "one IPv6 subscriber, one budget"
        );
    }
}
