//! One page of articles as a listing shows it (all, by tag, author,
//! favoriter, or the feed), and how many match: four statements in two
//! round trips whatever the page size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::dsl;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Numeric};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::seen_by::{assemble, counts_seen_by, Counts};
use super::{Article, ArticleDetails};
use crate::db::functions::{coalesce, int8};
use crate::db::users::User;
use crate::schema::{
    article_count_shards, article_tags, articles, favorites, follows, tag_link_count_shards, tags,
    users,
};

/// Which articles a listing shows.
#[derive(Debug, Default, Clone)]
pub struct ArticleFilter {
    pub tag: Option<String>,
    pub author: Option<String>,
    pub favorited_by: Option<String>,
    /// Only authors this user follows (the feed).
    pub followed_by: Option<i64>,
}

fn filtered(filter: &ArticleFilter) -> articles::BoxedQuery<'_, Pg> {
    let mut query = articles::table.into_boxed();
    if let Some(tag) = &filter.tag {
        query = query.filter(
            articles::id.eq_any(
                article_tags::table
                    .inner_join(tags::table)
                    .filter(tags::name.eq(tag))
                    .select(article_tags::article_id),
            ),
        );
    }
    if let Some(author) = &filter.author {
        query = query.filter(
            articles::author_id.eq_any(
                users::table
                    .filter(users::username.eq(author))
                    .select(users::id),
            ),
        );
    }
    if let Some(username) = &filter.favorited_by {
        query = query.filter(
            articles::id.eq_any(
                favorites::table
                    .inner_join(users::table)
                    .filter(users::username.eq(username))
                    .select(favorites::article_id),
            ),
        );
    }
    if let Some(follower) = filter.followed_by {
        query = query.filter(
            articles::author_id.eq_any(
                follows::table
                    .filter(follows::follower_id.eq(follower))
                    .select(follows::followed_id),
            ),
        );
    }
    query
}

/// `(SELECT id FROM tags WHERE name = $1)`.
type TagIdNamed<'a> = diesel::dsl::SingleValue<
    diesel::dsl::Select<
        diesel::dsl::Filter<tags::table, diesel::dsl::Eq<tags::name, &'a str>>,
        tags::id,
    >,
>;

/// The id of the tag named `name`, as a scalar subquery: compared with
/// `article_tags.tag_id`, the planner reads that one tag's range of the
/// (tag_id, created_at, article_id) index (migration 009) in order, where a
/// join with `tags` would make it read every link and sort them.
fn tag_id_named(name: &str) -> TagIdNamed<'_> {
    tags::table
        .filter(tags::name.eq(name))
        .select(tags::id)
        .single_value()
}

/// The tag, when a listing filters on a tag and nothing else.
fn tag_only(filter: &ArticleFilter) -> Option<&str> {
    match filter {
        ArticleFilter {
            tag: Some(tag),
            author: None,
            favorited_by: None,
            followed_by: None,
        } => Some(tag),
        _ => None,
    }
}

/// A sum of counter shards as a bigint, 0 over no rows: SUM(bigint) is
/// numeric in PostgreSQL, and the total fits a bigint. Typed rather than
/// written as SQL text, because diesel caches no prepared statement with
/// SQL text in it: PostgreSQL would plan the count on every request.
fn total<S>(sum: S) -> coalesce<int8<S>, i64>
where
    S: diesel::Expression<SqlType = Nullable<Numeric>>,
{
    coalesce(int8(sum), 0)
}

/// How many articles match `filter`, the cheapest way that is exact: the
/// trigger-kept counts for all articles (migration 003) and for a tag's
/// links (migration 010; every link has its article), else a count of the
/// filtered articles.
async fn count_matching(mut conn: &AsyncPgConnection, filter: &ArticleFilter) -> QueryResult<i64> {
    match filter {
        ArticleFilter {
            tag: None,
            author: None,
            favorited_by: None,
            followed_by: None,
        } => {
            article_count_shards::table
                .select(total(dsl::sum(article_count_shards::articles)))
                .get_result(&mut conn)
                .await
        }
        ArticleFilter {
            tag: Some(tag),
            author: None,
            favorited_by: None,
            followed_by: None,
        } => {
            // The tag's shards, a handful of rows whatever its number of
            // links (migration 010).
            tag_link_count_shards::table
                .filter(
                    tag_link_count_shards::tag_id
                        .nullable()
                        .eq(tag_id_named(tag)),
                )
                .select(total(dsl::sum(tag_link_count_shards::links)))
                .get_result(&mut conn)
                .await
        }
        _ => filtered(filter).count().get_result(&mut conn).await,
    }
}

/// An article's columns but its body, as lists read them.
type SummaryRow = (
    i64,
    i64,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// The ids of one page of the articles `filter` selects, newest first.
async fn page_ids(
    mut conn: &AsyncPgConnection,
    filter: &ArticleFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<i64>> {
    if let Some(tag) = tag_only(filter) {
        // From the tag's range of the (tag_id, created_at DESC, article_id
        // DESC) index (migration 009), which keeps each link's article
        // created_at: 20 index entries instead of every link of the tag
        // joined back to articles.
        return article_tags::table
            .filter(article_tags::tag_id.nullable().eq(tag_id_named(tag)))
            .select(article_tags::article_id)
            .order((
                article_tags::created_at.desc(),
                article_tags::article_id.desc(),
            ))
            .limit(limit)
            .offset(offset)
            .load(&mut conn)
            .await;
    }
    // By author (profile pages, the feed), from the (author_id, created_at,
    // id) index alone or by walking the newest-first index, as the planner
    // judges from the authors' articles. Not a LATERAL top-N per followed
    // author: its work grows with the number followed (docs/benchmarks.md,
    // "Single article and lists in few statements").
    filtered(filter)
        .select(articles::id)
        .order((articles::created_at.desc(), articles::id.desc()))
        .limit(limit)
        .offset(offset)
        .load(&mut conn)
        .await
}

/// The articles with these ids, newest first, with their details as
/// `viewer` sees them but without bodies: two statements, pipelined,
/// whatever the number of ids. Ids are passed as one array, so both
/// statements keep one cached (generic) plan per connection instead of
/// being planned again for each page.
async fn page_details(
    conn: &AsyncPgConnection,
    ids: &[i64],
    viewer: Option<i64>,
) -> QueryResult<Vec<ArticleDetails>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = articles::table
        .inner_join(users::table)
        .filter(articles::id.eq_any(ids))
        .select((
            // Every column but the body. Not an empty string literal in
            // its place: diesel never caches a statement with raw SQL in
            // it, so PostgreSQL would parse and plan it on every request.
            (
                articles::id,
                articles::author_id,
                articles::slug,
                articles::title,
                articles::description,
                articles::created_at,
                articles::updated_at,
            ),
            User::as_select(),
            counts_seen_by(viewer),
        ))
        .order((articles::created_at.desc(), articles::id.desc()))
        .load::<(SummaryRow, User, Counts)>(&mut &*conn);
    // One statement for the page's tags rather than a subquery per
    // article: with a few hundred tags the planner joins each article's
    // links to `tags` by hashing the whole table again.
    let tag_names = article_tags::table
        .inner_join(tags::table)
        .filter(article_tags::article_id.eq_any(ids))
        .select((article_tags::article_id, tags::name))
        .order(tags::name.asc())
        .load::<(i64, String)>(&mut &*conn);
    let (rows, tag_names) = tokio::try_join!(rows, tag_names)?;
    let mut tags_by_article: HashMap<i64, Vec<String>> = HashMap::new();
    for (article_id, name) in tag_names {
        tags_by_article.entry(article_id).or_default().push(name);
    }
    Ok(rows
        .into_iter()
        .map(|(row, author, counts)| {
            let (id, author_id, slug, title, description, created_at, updated_at) = row;
            let article = Article {
                id,
                author_id,
                slug,
                title,
                description,
                body: String::new(),
                created_at,
                updated_at,
            };
            let tags = tags_by_article.remove(&article.id).unwrap_or_default();
            assemble(article, author, tags, counts)
        })
        .collect())
}

/// One page of articles with their details as `viewer` sees them, newest
/// first, and how many match in all. Lists do not show bodies, so bodies
/// are left empty rather than read. Four statements in two round trips,
/// whatever the page size: the count and the page's ids, pipelined, then
/// [`page_details`].
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ArticleFilter,
    limit: i64,
    offset: i64,
    viewer: Option<i64>,
) -> QueryResult<(Vec<ArticleDetails>, i64)> {
    // Independent queries, sent together: diesel-async pipelines futures
    // polled at once on a shared `&AsyncPgConnection`.
    let pipeline: &AsyncPgConnection = conn;
    let (total, ids) = tokio::try_join!(
        count_matching(pipeline, filter),
        page_ids(pipeline, filter, limit, offset)
    )?;
    let page = page_details(pipeline, &ids, viewer).await?;
    Ok((page, total))
}
