//! What every request can reach: one value, registered once as
//! `web::Data<AppState>`, so a handler or extractor asks for one thing.

use crate::auth::throttle::LoginThrottle;
use crate::client_address::TrustedProxies;
use crate::config::AuthSettings;
use crate::db::migrations::KnownMigration;
use crate::db::Pool;
use crate::metrics::Metrics;

pub struct AppState {
    pub pool: Pool,
    pub metrics: Metrics,
    /// The migrations this binary carries, which `/ready` compares with
    /// the database's.
    pub migrations: Vec<KnownMigration>,
    pub auth: AuthSettings,
    pub login_throttle: LoginThrottle,
    /// Whose forwarded-for headers name the client (CONDUIT_TRUSTED_PROXIES).
    pub trusted_proxies: TrustedProxies,
}
