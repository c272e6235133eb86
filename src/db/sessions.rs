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

/// The most live sessions one user keeps: a new one beyond it ends the
/// oldest. Without a cap, one account logging in with its right password
/// in a loop added rows that no purge removes (they are neither ended nor
/// expired) for as long as it liked.
pub const LIVE_SESSIONS_PER_USER: i64 = 100;

/// Records a new session for `user_id`, ending its oldest live sessions
/// beyond [`LIVE_SESSIONS_PER_USER`]; returns its id. Call it inside a
/// transaction, so that both happen or neither.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    token_sha256: &[u8],
    expires_at: DateTime<Utc>,
) -> QueryResult<i64> {
    let id = diesel::insert_into(sessions::table)
        .values(NewSession {
            user_id,
            token_sha256,
            expires_at,
        })
        .returning(sessions::id)
        .get_result(conn)
        .await?;
    let live = diesel::alias!(crate::schema::sessions as live_sessions);
    let beyond_the_cap = live
        .filter(live.field(sessions::user_id).eq(user_id))
        .filter(live.field(sessions::revoked_at).is_null())
        .filter(live.field(sessions::expires_at).gt(now))
        .order(live.field(sessions::id).desc())
        .offset(LIVE_SESSIONS_PER_USER)
        .select(live.field(sessions::id));
    diesel::update(sessions::table.filter(sessions::id.eq_any(beyond_the_cap)))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)
        .await?;
    Ok(id)
}

/// [`create`], only while `password_hash` is still the account's hash: a
/// login verifies the password against the hash it read before hashing,
/// and a password change may have been committed meanwhile. Locks the
/// account's row (FOR SHARE, which waits for a change in progress, and
/// makes a change wait for this one's commit, so that its revocation of
/// every other session sees the new one). `None` when the hash changed.
/// Call it inside a transaction ([`super::pool::transaction`]): the lock
/// must last until the session is committed.
pub async fn create_if_password_unchanged(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    password_hash: &str,
    token_sha256: &[u8],
    expires_at: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    let unchanged = users::table
        .find(user_id)
        .filter(users::password_hash.eq(password_hash))
        .select(users::id)
        .for_share()
        .first::<i64>(conn)
        .await
        .optional()?
        .is_some();
    if !unchanged {
        return Ok(None);
    }
    create(conn, user_id, token_sha256, expires_at)
        .await
        .map(Some)
}

/// Whether session `id` is live (not ended, not expired), and if so keeps
/// it so until the transaction ends: a share lock on its row makes any
/// revocation wait for this transaction's commit, and a revocation
/// committed meanwhile is seen (PostgreSQL re-reads a locked row that
/// changed). Every authenticated write calls it first, in its own
/// transaction (`auth::AuthUser::write`).
pub async fn hold_live(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    sessions::table
        .find(id)
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(sessions::id)
        .for_share()
        .first::<i64>(conn)
        .await
        .optional()
        .map(|found| found.is_some())
}

/// The live session with this digest, and its user: not ended, not expired.
pub async fn find_active(
    conn: &mut AsyncPgConnection,
    token_sha256: &[u8],
) -> QueryResult<Option<(Session, User)>> {
    match &*ACTIVE_SESSION_SQL {
        Some(sql) => ActiveSession { sql, token_sha256 }
            .get_result(conn)
            .await
            .optional(),
        None => active_session(token_sha256)
            .get_result(conn)
            .await
            .optional(),
    }
}

/// [`find_active`]'s query. No LIMIT: `token_sha256` is unique
/// (`sessions_token_sha256_key`), so there is one row at most.
fn active_session(token_sha256: &[u8]) -> ActiveSessionQuery<'_> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_sha256.eq(token_sha256))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select((Session::as_select(), User::as_select()))
}

type ActiveSessionQuery<'a> = diesel::dsl::Select<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            diesel::dsl::Filter<
                diesel::dsl::InnerJoin<sessions::table, users::table>,
                diesel::dsl::Eq<sessions::token_sha256, &'a [u8]>,
            >,
            diesel::dsl::IsNull<sessions::revoked_at>,
        >,
        diesel::dsl::Gt<sessions::expires_at, now>,
    >,
    (
        diesel::dsl::AsSelect<Session, diesel::pg::Pg>,
        diesel::dsl::AsSelect<User, diesel::pg::Pg>,
    ),
>;

/// [`active_session`]'s SQL, rendered once, split at its one bind
/// parameter (`$1`, the digest); `None` if it ever had another shape, and
/// then each lookup renders the query as any other.
///
/// Every signed-in request runs this query, and diesel-async renders a
/// query's SQL from the DSL at every execution, even when its prepared
/// statement is cached: most of what the lookup costs (docs/benchmarks.md,
/// "The session lookup rendered once"). [`ActiveSession`] sends
/// the text rendered here instead, under a statement-cache key of its own
/// type, so the cache lookup stays a type id, not the text.
static ACTIVE_SESSION_SQL: std::sync::LazyLock<Option<(String, String)>> =
    std::sync::LazyLock::new(|| {
        use diesel::query_builder::{QueryBuilder, QueryFragment};

        let mut builder = diesel::pg::PgQueryBuilder::default();
        QueryFragment::<diesel::pg::Pg>::to_sql(
            &active_session(&[0; 32]),
            &mut builder,
            &diesel::pg::Pg,
        )
        .ok()?;
        let sql = builder.finish();
        let (before, after) = sql.split_once("$1")?;
        (!after.contains('$')).then(|| (before.to_owned(), after.to_owned()))
    });

/// [`active_session`] with its SQL already rendered (see
/// [`ACTIVE_SESSION_SQL`]): the same statement, the same one bind.
struct ActiveSession<'a> {
    sql: &'static (String, String),
    token_sha256: &'a [u8],
}

impl diesel::query_builder::QueryId for ActiveSession<'_> {
    type QueryId = ActiveSession<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for ActiveSession<'_> {
    type SqlType = <ActiveSessionQuery<'static> as diesel::query_builder::Query>::SqlType;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for ActiveSession<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql(&self.sql.0);
        out.push_bind_param::<diesel::sql_types::Binary, [u8]>(self.token_sha256)?;
        out.push_sql(&self.sql.1);
        Ok(())
    }
}

/// Marks the session as used now.
pub async fn touch(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_used_at.eq(now))
        .execute(conn)
        .await
}

/// Ends one session if it is live; returns 0 when it had already ended
/// or expired (a concurrent revocation is waited for and then seen).
pub async fn revoke(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now)),
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
    let rows = diesel::alias!(crate::schema::sessions as ended_rows);
    let ended = rows
        .filter(
            rows.field(sessions::revoked_at)
                .is_not_null()
                .or(rows.field(sessions::expires_at).le(diesel::dsl::now)),
        )
        .select(rows.field(sessions::id))
        .limit(batch)
        .for_update()
        .skip_locked();
    diesel::delete(sessions::table.filter(sessions::id.eq_any(ended)))
        .execute(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::ACTIVE_SESSION_SQL;

    /// Should the DSL ever render differently (a second bind, no bind),
    /// every lookup would quietly take the slow path: say so here.
    #[test]
    fn the_session_lookup_is_rendered_once_around_its_digest() {
        let (before, after) = ACTIVE_SESSION_SQL
            .as_ref()
            .expect("the session lookup renders to SQL with one bind");
        assert!(
            before.ends_with(r#""sessions"."token_sha256" = "#),
            "{before}"
        );
        assert!(
            after.contains(r#""sessions"."revoked_at" IS NULL"#),
            "{after}"
        );
    }
}
