//! What the authentication extractors and flows need to know.

use std::time::Duration;

use super::throttle::ThrottleSettings;

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// How long a session lasts after its login.
    pub session_ttl: Duration,
    pub throttle: ThrottleSettings,
    /// False in production unless CONDUIT_ALLOW_DEMO_USER=true.
    pub demo_login_allowed: bool,
}
