//! Articles, their tags and favorites, and the batch queries that turn a
//! page of articles into what the API shows, in a constant number of
//! queries whatever the page size.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::dsl::{count, now, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::profiles::followed_among;
use super::users::User;
use crate::schema::{
    article_count_shards, article_tags, articles, favorites, follows, tag_link_count_shards, tags,
    users,
};

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
pub struct NewArticle<'a> {
    pub author_id: i64,
    pub slug: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub body: &'a str,
}

/// A partial update of an article's own columns.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = articles)]
pub struct ArticleChanges {
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
            // SUM(bigint) is numeric in PostgreSQL; the total fits a bigint.
            article_count_shards::table
                .select(sql::<BigInt>("COALESCE(SUM(articles), 0)::bigint"))
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
            // links (migration 010); SUM is numeric, as above.
            tag_link_count_shards::table
                .filter(
                    tag_link_count_shards::tag_id
                        .nullable()
                        .eq(tag_id_named(tag)),
                )
                .select(sql::<BigInt>("COALESCE(SUM(links), 0)::bigint"))
                .get_result(&mut conn)
                .await
        }
        _ => filtered(filter).count().get_result(&mut conn).await,
    }
}

/// One page of articles, newest first, and how many match in all. Lists do
/// not show bodies, so the page's bodies are left empty rather than read.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ArticleFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Article>, i64)> {
    let rows = if let Some(tag) = tag_only(filter) {
        // The page's ids first, from the tag's range of the (tag_id,
        // created_at DESC, article_id DESC) index (migration 009), which
        // keeps each link's article created_at: 20 index entries instead
        // of every link of the tag joined back to articles.
        let page_ids = article_tags::table
            .filter(article_tags::tag_id.nullable().eq(tag_id_named(tag)))
            .select(article_tags::article_id)
            .order((
                article_tags::created_at.desc(),
                article_tags::article_id.desc(),
            ))
            .limit(limit)
            .offset(offset);
        articles::table
            .filter(articles::id.eq_any(page_ids))
            .into_boxed()
    } else if filter.followed_by.is_some() || filter.author.is_some() {
        // The page's ids first, then only their rows: by author, the ids
        // come from the (author_id, created_at, id) index alone, so a feed
        // reads one page of rows instead of sorting every followed article.
        // Not for favorites: the page walks the newest-first index.
        let page_ids = filtered(filter)
            .select(articles::id)
            .order((articles::created_at.desc(), articles::id.desc()))
            .limit(limit)
            .offset(offset);
        articles::table
            .filter(articles::id.eq_any(page_ids))
            .into_boxed()
    } else {
        filtered(filter).limit(limit).offset(offset)
    };
    // The count and the page are independent: pipelined, as below.
    let pipeline: &AsyncPgConnection = conn;
    let page = rows
        .select((
            articles::id,
            articles::author_id,
            articles::slug,
            articles::title,
            articles::description,
            sql::<Text>("''"),
            articles::created_at,
            articles::updated_at,
        ))
        .order((articles::created_at.desc(), articles::id.desc()))
        .load::<Article>(&mut &*pipeline);
    let (total, page) = tokio::try_join!(count_matching(pipeline, filter), page)?;
    Ok((page, total))
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

/// Adds what the API shows to each article, as seen by `viewer`: five
/// queries at most, whatever the number of articles.
pub async fn with_details(
    conn: &mut AsyncPgConnection,
    page: Vec<Article>,
    viewer: Option<i64>,
) -> QueryResult<Vec<ArticleDetails>> {
    if page.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = page.iter().map(|a| a.id).collect();
    let author_ids: Vec<i64> = page
        .iter()
        .map(|a| a.author_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();

    // Independent queries, sent together: diesel-async pipelines futures
    // polled at once on a shared `&AsyncPgConnection`, so the page pays one
    // round trip for its details instead of one per query.
    let pipeline: &AsyncPgConnection = conn;
    let authors = users::table
        .filter(users::id.eq_any(&author_ids))
        .select(User::as_select())
        .load::<User>(&mut &*pipeline);
    let tag_names = article_tags::table
        .inner_join(tags::table)
        .filter(article_tags::article_id.eq_any(&ids))
        .select((article_tags::article_id, tags::name))
        .order(tags::name.asc())
        .load::<(i64, String)>(&mut &*pipeline);
    let counts = favorites::table
        .filter(favorites::article_id.eq_any(&ids))
        .group_by(favorites::article_id)
        .select((favorites::article_id, count(favorites::user_id)))
        .load::<(i64, i64)>(&mut &*pipeline);
    let (authors, tag_names, counts, favorited, followed) = match viewer {
        Some(viewer) => {
            let favorited = favorites::table
                .filter(favorites::user_id.eq(viewer))
                .filter(favorites::article_id.eq_any(&ids))
                .select(favorites::article_id)
                .load::<i64>(&mut &*pipeline);
            let followed = followed_among(pipeline, viewer, &author_ids);
            tokio::try_join!(authors, tag_names, counts, favorited, followed)?
        }
        None => {
            let (authors, tag_names, counts) = tokio::try_join!(authors, tag_names, counts)?;
            (authors, tag_names, counts, Vec::new(), HashSet::new())
        }
    };

    let authors: HashMap<i64, User> = authors.into_iter().map(|u| (u.id, u)).collect();
    let mut tags_by_article: HashMap<i64, Vec<String>> = HashMap::new();
    for (article_id, name) in tag_names {
        tags_by_article.entry(article_id).or_default().push(name);
    }
    let counts: HashMap<i64, i64> = counts.into_iter().collect();
    let favorited: HashSet<i64> = favorited.into_iter().collect();

    page.into_iter()
        .map(|article| {
            let author = authors
                .get(&article.author_id)
                .cloned()
                .ok_or(diesel::result::Error::NotFound)?;
            Ok(ArticleDetails {
                following_author: followed.contains(&article.author_id),
                tags: tags_by_article.remove(&article.id).unwrap_or_default(),
                favorited: favorited.contains(&article.id),
                favorites_count: counts.get(&article.id).copied().unwrap_or(0),
                author,
                article,
            })
        })
        .collect()
}

/// One article with its details, as seen by `viewer`.
pub async fn details(
    conn: &mut AsyncPgConnection,
    article: Article,
    viewer: Option<i64>,
) -> QueryResult<ArticleDetails> {
    with_details(conn, vec![article], viewer)
        .await?
        .pop()
        .ok_or(diesel::result::Error::NotFound)
}

/// Makes sure every tag exists and gives the article exactly these tags.
async fn set_tags(
    conn: &mut AsyncPgConnection,
    article_id: i64,
    names: &[String],
) -> QueryResult<()> {
    diesel::delete(article_tags::table.filter(article_tags::article_id.eq(article_id)))
        .execute(conn)
        .await?;
    if names.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = names.iter().map(|name| tags::name.eq(name)).collect();
    diesel::insert_into(tags::table)
        .values(&rows)
        .on_conflict(tags::name)
        .do_nothing()
        .execute(conn)
        .await?;
    let tag_ids: Vec<i64> = tags::table
        .filter(tags::name.eq_any(names))
        .select(tags::id)
        .load(conn)
        .await?;
    let links: Vec<_> = tag_ids
        .into_iter()
        .map(|tag_id| {
            (
                article_tags::article_id.eq(article_id),
                article_tags::tag_id.eq(tag_id),
            )
        })
        .collect();
    diesel::insert_into(article_tags::table)
        .values(&links)
        .execute(conn)
        .await
        .map(drop)
}

/// Whether a failed [`create`] or [`update`] drew a slug another article has.
pub fn is_slug_taken(error: &diesel::result::Error) -> bool {
    super::violated_unique_constraint(error) == Some("articles_slug_key")
}

/// Inserts an article with its tags, in one transaction; a slug another
/// article has is a unique violation ([`is_slug_taken`]).
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewArticle<'_>,
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
    changes: &ArticleChanges,
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

#[derive(QueryableByName)]
struct TagName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// The `limit` tags most used by the newest `window` tag uses, most used
/// first (ties: the most recently used first). Bounded twice: the answer
/// never grows with the number of tags, and the work never grows with the
/// number of articles (the newest rows of the primary key's index).
pub async fn popular_tags(
    conn: &mut AsyncPgConnection,
    window: i64,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let rows: Vec<TagName> = diesel::sql_query(
        "SELECT t.name FROM (\
           SELECT article_id, tag_id FROM article_tags \
           ORDER BY article_id DESC LIMIT $1) AS recent \
         JOIN tags t ON t.id = recent.tag_id \
         GROUP BY t.id, t.name \
         ORDER BY count(*) DESC, max(recent.article_id) DESC, t.name \
         LIMIT $2",
    )
    .bind::<diesel::sql_types::BigInt, _>(window)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.name).collect())
}
