//! The account migration 002 seeded, whose password is public: recorded
//! by id in `seeded_demo_account` (migration 011), which nothing in the
//! API writes, so the account cannot shed the mark by changing its email.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::{seeded_demo_account, users};

/// Whether `user_id` is the seeded demo account.
pub async fn is_demo(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        seeded_demo_account::table.filter(seeded_demo_account::user_id.eq(user_id)),
    ))
    .get_result(conn)
    .await
}

/// The seeded demo account's id and current username, if it still exists.
pub async fn find(conn: &mut AsyncPgConnection) -> QueryResult<Option<(i64, String)>> {
    seeded_demo_account::table
        .inner_join(users::table)
        .select((users::id, users::username))
        .first(conn)
        .await
        .optional()
}
