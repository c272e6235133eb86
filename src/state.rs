//! What every request can reach: one value, registered once as
//! `web::Data<AppState>`, so a handler or extractor asks for one thing.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::auth::settings::AuthSettings;
use crate::auth::sign_in::SignIn;
use crate::auth::throttle::Throttle;
use crate::client_address::TrustedProxies;
use crate::db::migrations::KnownMigration;
use crate::db::Db;
use crate::metrics::Metrics;

pub struct AppState {
    pub db: Db,
    pub metrics: Metrics,
    /// The migrations this binary carries, which `/ready` compares with
    /// the database's.
    pub migrations: Vec<KnownMigration>,
    pub auth: AuthSettings,
    /// Login and registration budgets, counted in PostgreSQL (shared by
    /// every replica).
    pub throttle: Throttle,
    /// Set on SIGTERM/SIGINT: `/ready` answers 503 so that a load balancer
    /// takes this replica out, while requests are still served.
    pub draining: Arc<AtomicBool>,
    /// Whose forwarded-for headers name the client (CONDUIT_TRUSTED_PROXIES).
    pub trusted_proxies: TrustedProxies,
}

impl AppState {
    /// What registration and login work with.
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            db: &self.db,
            throttle: &self.throttle,
            settings: &self.auth,
        }
    }
}
