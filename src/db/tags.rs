//! Tags: an article's tags as one set, and the popular ones.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::{article_tags, tags};

/// Makes sure every tag exists and gives the article exactly these tags.
pub(super) async fn set_tags(
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

#[derive(QueryableByName)]
struct TagName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// The `limit` tags used by the most authors among the newest `window`
/// tag uses (ties: the most uses, then the most recently used first).
/// Authors, not uses: one account posting hundreds of articles gives each
/// of its tags the weight of one author, so it cannot push above a tag
/// that two people use. Bounded twice: the answer never grows with the
/// number of tags, and the work never grows with the number of articles
/// (the newest rows of the primary key's index, and their articles).
pub async fn popular_tags(
    conn: &mut AsyncPgConnection,
    window: i64,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let rows: Vec<TagName> = diesel::sql_query(include_str!("tags/popular.sql"))
        .bind::<diesel::sql_types::BigInt, _>(window)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| row.name).collect())
}
