//! Failed-login throttling, per client address and per account.
//!
//! Kept in memory, per process: with N replicas an attacker gets at most N
//! times the budget, which still stops online guessing. Successful logins
//! are never counted, so normal use (and the conformance suite) is never
//! slowed down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys to keep before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// An address gets this many times an account's budget: many users share
/// one (a NAT, an office, a proxy not listed as trusted), and attempts in
/// flight count, so ten users logging in at once must not block the
/// eleventh.
pub const ADDRESS_BUDGET_FACTOR: u32 = 10;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    /// Failures allowed per window; 0 turns throttling off.
    pub max_failures: u32,
    pub window: Duration,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug)]
pub struct LoginThrottle {
    settings: ThrottleSettings,
    windows: Mutex<HashMap<String, Window>>,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn keys(address: Option<IpAddr>, email: &str) -> Vec<String> {
        let mut keys = vec![format!("account:{}", email.to_lowercase())];
        if let Some(address) = address {
            keys.push(format!("address:{address}"));
        }
        keys
    }

    /// Starts a login attempt: `Err(wait)` when this address or account
    /// has used up its failures, else the attempt is counted as a failure
    /// at once, before the password is checked, so that attempts still in
    /// flight use up the budget too (otherwise any number of parallel
    /// guesses get through before the first one is recorded). A correct
    /// password takes its count back with [`Self::succeeded`].
    pub fn begin(&self, address: Option<IpAddr>, email: &str) -> Result<(), Duration> {
        if self.settings.max_failures == 0 {
            return Ok(());
        }
        let window = self.settings.window;
        let keys = Self::keys(address, email);
        // One lock for the check and the count: no attempt slips between.
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let budget = |key: &str| {
            if key.starts_with("address:") {
                self.settings
                    .max_failures
                    .saturating_mul(ADDRESS_BUDGET_FACTOR)
            } else {
                self.settings.max_failures
            }
        };
        let blocked = keys
            .iter()
            .filter_map(|key| windows.get(key).map(|w| (key, w)))
            .filter(|(key, w)| w.failures >= budget(key))
            .map(|(_, w)| w)
            .filter_map(|w| window.checked_sub(w.started.elapsed()))
            .max();
        if let Some(wait) = blocked {
            return Err(wait);
        }
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| w.started.elapsed() < window);
        }
        for key in keys {
            let entry = windows.entry(key).or_insert(Window {
                started: Instant::now(),
                failures: 0,
            });
            if entry.started.elapsed() >= window {
                *entry = Window {
                    started: Instant::now(),
                    failures: 0,
                };
            }
            entry.failures += 1;
        }
        Ok(())
    }

    /// The attempt begun for `address` and `email` could not be checked
    /// (the server was too busy): it takes its count back, and the
    /// account's earlier failures stay.
    pub fn cancel(&self, address: Option<IpAddr>, email: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for key in Self::keys(address, email) {
            if let Some(entry) = windows.get_mut(&key) {
                entry.failures = entry.failures.saturating_sub(1);
            }
        }
    }

    /// The attempt begun for `address` and `email` had the right password:
    /// its count is taken back, and the account's failures are cleared (the
    /// address keeps the failures it had before).
    pub fn succeeded(&self, address: Option<IpAddr>, email: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.remove(&format!("account:{}", email.to_lowercase()));
        if let Some(address) = address {
            if let Some(entry) = windows.get_mut(&format!("address:{address}")) {
                entry.failures = entry.failures.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_failures: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleSettings {
            max_failures,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn the_budget_is_per_account_and_per_address() {
        let throttle = throttle(2);
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "10.0.0.1".parse().unwrap();

        assert!(throttle.begin(Some(here), "A@x.org").is_ok());
        assert!(throttle.begin(Some(here), "a@x.org").is_ok());

        assert!(throttle.begin(Some(here), "a@x.org").is_err());
        assert!(
            throttle.begin(Some(there), "a@x.org").is_err(),
            "per account"
        );
        // The address has ten times an account's budget.
        for i in 0..18 {
            assert!(throttle.begin(Some(here), &format!("{i}@x.org")).is_ok());
        }
        assert!(
            throttle.begin(Some(here), "b@x.org").is_err(),
            "per address"
        );
        assert!(throttle.begin(Some(there), "b@x.org").is_ok());
    }

    #[test]
    fn attempts_in_flight_count_and_a_success_takes_its_count_back() {
        let throttle = throttle(3);
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        // Three attempts begun, none finished yet: the fourth is refused.
        for _ in 0..3 {
            assert!(throttle.begin(Some(here), "a@x.org").is_ok());
        }
        assert!(throttle.begin(Some(here), "a@x.org").is_err());

        let throttle = self::throttle(3);
        for _ in 0..10 {
            assert!(throttle.begin(Some(here), "a@x.org").is_ok());
            throttle.succeeded(Some(here), "a@x.org");
        }
        assert!(
            throttle.begin(Some(here), "a@x.org").is_ok(),
            "successful logins use no budget"
        );
    }

    #[test]
    fn zero_failures_allowed_means_off() {
        let throttle = throttle(0);
        for _ in 0..100 {
            assert!(throttle.begin(None, "a@x.org").is_ok());
        }
    }
}
