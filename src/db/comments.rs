//! Comments on articles.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::users::User;
use crate::schema::{comments, users};

/// A row of `comments`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = comments, check_for_backend(diesel::pg::Pg))]
pub struct Comment {
    pub id: i64,
    pub article_id: i64,
    pub author_id: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    article_id: i64,
    author_id: i64,
    body: &str,
) -> QueryResult<Comment> {
    diesel::insert_into(comments::table)
        .values((
            comments::article_id.eq(article_id),
            comments::author_id.eq(author_id),
            comments::body.eq(body),
        ))
        .returning(Comment::as_returning())
        .get_result(conn)
        .await
}

/// A page of an article's comments with their authors, newest first, in
/// one query.
pub async fn for_article(
    conn: &mut AsyncPgConnection,
    article_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(Comment, User)>> {
    comments::table
        .inner_join(users::table)
        .filter(comments::article_id.eq(article_id))
        .order((comments::created_at.desc(), comments::id.desc()))
        .limit(limit)
        .offset(offset)
        .select((Comment::as_select(), User::as_select()))
        .load(conn)
        .await
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    article_id: i64,
    id: i64,
) -> QueryResult<Option<Comment>> {
    comments::table
        .filter(comments::id.eq(id))
        .filter(comments::article_id.eq(article_id))
        .select(Comment::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(comments::table.find(id)).execute(conn).await
}
