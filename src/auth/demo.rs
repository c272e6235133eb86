//! The seeded demo account (migration 002), whose password is public.

use super::DEMO_EMAIL;
use crate::db::{self, Db};

/// The seeded demo account has a published password: say so at every
/// production boot while it exists.
pub async fn warn_if_present(db: &Db, login_allowed: bool) {
    let exists = db
        .run(async |conn| {
            db::users::email_exists(conn, DEMO_EMAIL)
                .await
                .map_err(db::DbError::Query)
        })
        .await;
    match exists {
        Ok(true) if login_allowed => tracing::warn!(
            "the demo account ({}) exists and CONDUIT_ALLOW_DEMO_USER lets it log in: its password is public",
            DEMO_EMAIL
        ),
        Ok(true) => tracing::warn!(
            "the demo account ({}) exists; its login is refused in production (CONDUIT_ALLOW_DEMO_USER=true allows it)",
            DEMO_EMAIL
        ),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "could not check for the demo account"),
    }
}
