//! The seeded demo account (migration 002), whose password is public,
//! known by its id (migration 011), not by the email it can change.

use crate::db::{self, Db};

/// The seeded demo account has a published password: say so at every
/// production boot while it exists, whatever it is called now.
pub async fn warn_if_present(db: &Db, login_allowed: bool) {
    let found = db
        .run(async |conn| {
            db::demo_account::find(conn)
                .await
                .map_err(db::DbError::Query)
        })
        .await;
    match found {
        Ok(Some((id, username))) if login_allowed => tracing::warn!(
            user_id = id,
            %username,
            "the seeded demo account exists and CONDUIT_ALLOW_DEMO_USER lets it log in: its password is public"
        ),
        Ok(Some((id, username))) => tracing::warn!(
            user_id = id,
            %username,
            "the seeded demo account exists; its login is refused in production (CONDUIT_ALLOW_DEMO_USER=true allows it)"
        ),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not check for the demo account"),
    }
}
