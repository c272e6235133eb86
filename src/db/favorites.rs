//! Favorites: a user's mark on an article; the count is read with it.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::favorites;

/// `user_id` favorites the article; twice is not an error.
pub async fn favorite(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    article_id: i64,
) -> QueryResult<()> {
    diesel::insert_into(favorites::table)
        .values((
            favorites::user_id.eq(user_id),
            favorites::article_id.eq(article_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

pub async fn unfavorite(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    article_id: i64,
) -> QueryResult<()> {
    diesel::delete(favorites::table.find((user_id, article_id)))
        .execute(conn)
        .await
        .map(drop)
}
