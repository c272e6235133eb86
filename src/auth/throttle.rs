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

    /// `Some(wait)` when this address or account has used up its failures.
    pub fn blocked_for(&self, address: Option<IpAddr>, email: &str) -> Option<Duration> {
        if self.settings.max_failures == 0 {
            return None;
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(address, email)
            .iter()
            .filter_map(|key| windows.get(key))
            .filter(|w| w.failures >= self.settings.max_failures)
            .filter_map(|w| self.settings.window.checked_sub(w.started.elapsed()))
            .max()
    }

    pub fn record_failure(&self, address: Option<IpAddr>, email: &str) {
        if self.settings.max_failures == 0 {
            return;
        }
        let window = self.settings.window;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| w.started.elapsed() < window);
        }
        for key in Self::keys(address, email) {
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
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn record_success(&self, email: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.remove(&format!("account:{}", email.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_per_account_and_per_address() {
        let throttle = LoginThrottle::new(ThrottleSettings {
            max_failures: 2,
            window: Duration::from_secs(60),
        });
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "10.0.0.1".parse().unwrap();

        throttle.record_failure(Some(here), "A@x.org");
        assert!(throttle.blocked_for(Some(here), "a@x.org").is_none());
        throttle.record_failure(Some(here), "a@x.org");

        assert!(throttle.blocked_for(Some(here), "a@x.org").is_some());
        assert!(
            throttle.blocked_for(Some(there), "a@x.org").is_some(),
            "per account"
        );
        assert!(
            throttle.blocked_for(Some(here), "b@x.org").is_some(),
            "per address"
        );
        assert!(throttle.blocked_for(Some(there), "b@x.org").is_none());
    }

    #[test]
    fn zero_failures_allowed_means_off() {
        let throttle = LoginThrottle::new(ThrottleSettings {
            max_failures: 0,
            window: Duration::from_secs(60),
        });
        for _ in 0..100 {
            throttle.record_failure(None, "a@x.org");
        }
        assert!(throttle.blocked_for(None, "a@x.org").is_none());
    }
}
