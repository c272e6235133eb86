//! Sessions: one row per login, found by the SHA-256 of its token.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::users::User;
use crate::schema::{sessions, users};

/// How stale `last_used_at` may get before a request refreshes it: writing
/// it on every request would turn every read into a write.
pub const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A row of `sessions` (without the token digest, which nothing reads).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
struct NewSession<'a> {
    user_id: i64,
    token_sha256: &'a [u8],
    expires_at: DateTime<Utc>,
}

/// Records a new session for `user_id`; returns its id.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    token_sha256: &[u8],
    expires_at: DateTime<Utc>,
) -> QueryResult<i64> {
    diesel::insert_into(sessions::table)
        .values(NewSession {
            user_id,
            token_sha256,
            expires_at,
        })
        .returning(sessions::id)
        .get_result(conn)
        .await
}

/// The live session with this digest, and its user: not ended, not expired.
pub async fn find_active(
    conn: &mut AsyncPgConnection,
    token_sha256: &[u8],
) -> QueryResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_sha256.eq(token_sha256))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .await
        .optional()
}

/// Marks the session as used now.
pub async fn touch(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_used_at.eq(now))
        .execute(conn)
        .await
}

/// Ends one session.
pub async fn revoke(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)
    .await
}

/// Ends every live session of `user_id` but `keep`.
pub async fn revoke_others(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    keep: i64,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)
    .await
}

/// Deletes up to `batch` sessions that can never be used again (ended or
/// expired); returns how many. `SKIP LOCKED` lets several replicas purge at
/// once without waiting on each other, and the batch keeps each statement
/// (and its locks and WAL) short.
pub async fn purge_ended(conn: &mut AsyncPgConnection, batch: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM sessions WHERE id IN (\
           SELECT id FROM sessions \
           WHERE revoked_at IS NOT NULL OR expires_at <= now() \
           LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}
