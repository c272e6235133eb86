//! Who follows whom.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::follows;

/// `follower` follows `followed`; following twice is not an error.
pub async fn follow(conn: &mut AsyncPgConnection, follower: i64, followed: i64) -> QueryResult<()> {
    diesel::insert_into(follows::table)
        .values((
            follows::follower_id.eq(follower),
            follows::followed_id.eq(followed),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

pub async fn unfollow(
    conn: &mut AsyncPgConnection,
    follower: i64,
    followed: i64,
) -> QueryResult<()> {
    diesel::delete(follows::table.find((follower, followed)))
        .execute(conn)
        .await
        .map(drop)
}

/// Which of `candidates` the `viewer` follows, in one query.
pub async fn followed_among(
    mut conn: &AsyncPgConnection,
    viewer: i64,
    candidates: &[i64],
) -> QueryResult<HashSet<i64>> {
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let followed: Vec<i64> = follows::table
        .filter(follows::follower_id.eq(viewer))
        .filter(follows::followed_id.eq_any(candidates))
        .select(follows::followed_id)
        .load(&mut conn)
        .await?;
    Ok(followed.into_iter().collect())
}
