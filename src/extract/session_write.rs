//! Writes made as a session: the one way an authenticated request writes.
//!
//! The extractor checks the token when the headers arrive, but a request
//! can take long after that (a body held back, a password being hashed),
//! and its session may end meanwhile (a logout, a password change that
//! ends every other session). So each write runs in one transaction that
//! first checks, and holds, its session: a share lock on the session row
//! until the commit. A revocation committed before that is seen (401); one
//! that comes later waits for the write to commit, so no write of a session
//! ever lands after the session ended.
//!
//! Lock order, the same in every transaction that takes both, so that no
//! two of them wait for each other: the account's row first (only changes
//! to the account itself take it, see [`AuthUser::write_account`]), then
//! the session's. Other writes never lock the account's row in a way that
//! conflicts (a reference to it takes FOR KEY SHARE, compatible with the
//! account change's FOR NO KEY UPDATE); an account change ends other
//! sessions before it changes a username or email (which locks the row
//! against those references). A logout does not come here: its one
//! conditional UPDATE is its own check, and two of them each holding the
//! row shared before updating it would deadlock.

use diesel_async::AsyncPgConnection;

use super::AuthUser;
use crate::db::pool::transaction;
use crate::db::{sessions, users, Db};
use crate::error::{AppError, AppResult};

/// What a write answers when its session ended after the headers came.
const SESSION_ENDED: AppError = AppError::Unauthorized("is invalid");

impl AuthUser {
    /// Runs `work` in one transaction in which this session stays live:
    /// 401 if it ended since the request was authenticated.
    pub async fn write<T>(
        &self,
        db: &Db,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> AppResult<T>,
    ) -> AppResult<T> {
        self.unit_of_work(db, false, work).await
    }

    /// [`AuthUser::write`] for a change to the account itself: its row is
    /// locked first (until the commit), then the session is checked.
    pub async fn write_account<T>(
        &self,
        db: &Db,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> AppResult<T>,
    ) -> AppResult<T> {
        self.unit_of_work(db, true, work).await
    }

    async fn unit_of_work<T>(
        &self,
        db: &Db,
        lock_account: bool,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> AppResult<T>,
    ) -> AppResult<T> {
        db.run(async |conn| {
            transaction(conn, async |conn| {
                if lock_account && !users::lock_for_change(conn, self.user.id).await? {
                    return Err(SESSION_ENDED);
                }
                self.hold_session(conn).await?;
                work(conn).await
            })
            .await
        })
        .await
    }

    async fn hold_session(&self, conn: &mut AsyncPgConnection) -> AppResult<()> {
        if sessions::hold_live(conn, self.session_id).await? {
            Ok(())
        } else {
            Err(SESSION_ENDED)
        }
    }
}
