//! Articles: their rows and the single-article queries here, listings in
//! `listing`, and what a viewer sees of an article besides its row in
//! `seen_by`; each in a constant number of statements whatever the page.

mod listing;
mod seen_by;

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

pub use listing::{list, ArticleFilter};
use seen_by::{assemble, counts_seen_by, tag_list, Counts};

use super::tags::set_tags;
use super::users::User;
use crate::schema::{articles, users};

/// A row of `articles`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = articles, check_for_backend(Pg))]
pub struct Article {
    pub id: i64,
    pub author_id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = articles)]
pub struct NewArticleRow<'a> {
    pub author_id: i64,
    pub slug: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub body: &'a str,
}

/// A partial update of an article's own columns.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = articles)]
pub struct ArticleChangeset {
    pub slug: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
}

/// An article with everything the API shows about it.
#[derive(Debug, Clone)]
pub struct ArticleDetails {
    pub article: Article,
    pub author: User,
    pub following_author: bool,
    pub tags: Vec<String>,
    pub favorited: bool,
    pub favorites_count: i64,
}

pub async fn find_by_slug(
    conn: &mut AsyncPgConnection,
    slug: &str,
) -> QueryResult<Option<Article>> {
    articles::table
        .filter(articles::slug.eq(slug))
        .select(Article::as_select())
        .first(conn)
        .await
        .optional()
}

/// The article with this slug and its details as `viewer` sees them, in
/// one statement.
pub async fn find_with_details(
    conn: &mut AsyncPgConnection,
    slug: &str,
    viewer: Option<i64>,
) -> QueryResult<Option<ArticleDetails>> {
    let row = articles::table
        .inner_join(users::table)
        .filter(articles::slug.eq(slug))
        .select((
            Article::as_select(),
            User::as_select(),
            tag_list(),
            counts_seen_by(viewer),
        ))
        .get_result::<(Article, User, Option<Vec<String>>, Counts)>(conn)
        .await
        .optional()?;
    Ok(row.map(|(article, author, tags, counts)| {
        assemble(article, author, tags.unwrap_or_default(), counts)
    }))
}

/// One article with its details, as `viewer` sees them, in one statement;
/// `NotFound` when the article is gone.
pub async fn details(
    conn: &mut AsyncPgConnection,
    article: Article,
    viewer: Option<i64>,
) -> QueryResult<ArticleDetails> {
    let (author, tags, counts) = articles::table
        .inner_join(users::table)
        .filter(articles::id.eq(article.id))
        .select((User::as_select(), tag_list(), counts_seen_by(viewer)))
        .get_result::<(User, Option<Vec<String>>, Counts)>(conn)
        .await?;
    Ok(assemble(article, author, tags.unwrap_or_default(), counts))
}

/// Whether a failed [`create`] or [`update`] drew a slug another article has.
pub fn is_slug_taken(error: &diesel::result::Error) -> bool {
    super::violated_unique_constraint(error) == Some("articles_slug_key")
}

/// Inserts an article with its tags, in one transaction; a slug another
/// article has is a unique violation ([`is_slug_taken`]).
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewArticleRow<'_>,
    tag_names: &[String],
) -> QueryResult<Article> {
    conn.transaction(async |conn| {
        let article = diesel::insert_into(articles::table)
            .values(new)
            .returning(Article::as_returning())
            .get_result(conn)
            .await?;
        set_tags(conn, article.id, tag_names).await?;
        Ok(article)
    })
    .await
}

/// Applies `changes` and, when given, replaces the tags, in one
/// transaction. `updated_at` moves even when only the tags change.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &ArticleChangeset,
    tag_names: Option<&[String]>,
) -> QueryResult<Article> {
    conn.transaction(async |conn| {
        let article = diesel::update(articles::table.find(id))
            .set((changes, articles::updated_at.eq(now)))
            .returning(Article::as_returning())
            .get_result(conn)
            .await?;
        if let Some(names) = tag_names {
            set_tags(conn, id, names).await?;
        }
        Ok(article)
    })
    .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(articles::table.find(id)).execute(conn).await
}
