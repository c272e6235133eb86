//! Login and registration throttling: which keys an attempt counts
//! against and with which budgets. The counts live in PostgreSQL
//! (`db::throttle`, migration 006), so every replica shares them.
//!
//! The policy (what each key allows, and why an account is never locked
//! out) is explained once, in docs/security.md, "Throttling". In short: an
//! attempt counts from its start, before the hash, so parallel guesses
//! cannot outrun the count; an account from one address is strict; an
//! account from every address, an address, and registrations and password
//! changes back off instead.
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

/// A user gets this many times a session's budget of password changes:
/// enough for a change from each of two devices, and a session that
/// spent its budget cannot simply log in again for a fresh one.
pub const PASSWORD_CHANGE_USER_FACTOR: u32 = 2;

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
    /// Password changes per window from one session before its backoff
    /// starts (a user gets [`PASSWORD_CHANGE_USER_FACTOR`] times it); 0
    /// turns the limit off.
    pub password_changes_per_session: u32,
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
    pub async fn give_back_login(
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
    pub async fn give_back_registration(
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

/// The keys of a password change: its user's and its session's.
fn password_change_keys(user_id: i64, session_id: i64) -> [String; 2] {
    [
        format!("password-change-user:{user_id}"),
        format!("password-change-session:{session_id}"),
    ]
}

impl Throttle {
    /// Starts a password change by `user_id` from `session_id`: counted
    /// against the user and the session, or refused (counted against
    /// neither) with how long to wait. The user's row is counted first,
    /// by every change, so that concurrent ones lock in one order.
    pub async fn begin_password_change(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: i64,
        session_id: i64,
    ) -> QueryResult<Admission> {
        let per_session = self.settings.password_changes_per_session;
        if per_session == 0 {
            return Ok(Admission::Admitted);
        }
        let [user, session] = password_change_keys(user_id, session_id);
        let per_user = per_session.saturating_mul(PASSWORD_CHANGE_USER_FACTOR);
        let by_user = throttle::begin_with_backoff(
            conn,
            &user,
            self.settings.window,
            per_user,
            self.settings.max_backoff,
        )
        .await?;
        if by_user != Admission::Admitted {
            return Ok(by_user);
        }
        let by_session = throttle::begin_with_backoff(
            conn,
            &session,
            self.settings.window,
            per_session,
            self.settings.max_backoff,
        )
        .await?;
        if by_session != Admission::Admitted {
            throttle::give_back(conn, &user).await?;
        }
        Ok(by_session)
    }

    /// The password change could not be carried out (the server was too
    /// busy to hash): the user and the session take its count back.
    pub async fn give_back_password_change(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: i64,
        session_id: i64,
    ) -> QueryResult<()> {
        if self.settings.password_changes_per_session == 0 {
            return Ok(());
        }
        for key in password_change_keys(user_id, session_id) {
            throttle::give_back(conn, &key).await?;
        }
        Ok(())
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
