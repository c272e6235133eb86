//! The dataset's rows and the multi-row INSERTs that load them.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::rngs::StdRng;
use rand::Rng;

use conduit::schema::{article_tags, articles, comments, favorites, follows, users};

use super::draw::{count_with_mean, distinct_skewed};
use super::{
    DatasetError, MAX_PARAMS, MEAN_COMMENTS, MEAN_FAVORITES, MEAN_FOLLOWS, READER_FOLLOWS,
};
use crate::text;

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(super) struct NewUser {
    pub(super) username: String,
    pub(super) email: String,
    pub(super) password_hash: String,
    pub(super) bio: Option<String>,
    pub(super) image: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = articles)]
pub(super) struct NewArticle {
    pub(super) author_id: i64,
    pub(super) slug: String,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) body: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = comments)]
pub(super) struct NewComment {
    pub(super) article_id: i64,
    pub(super) author_id: i64,
    pub(super) body: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

pub(super) async fn insert_users(
    conn: &mut AsyncPgConnection,
    rng: &mut StdRng,
    count: usize,
    password_hash: &str,
) -> Result<Vec<i64>, DatasetError> {
    let mut ids = Vec::with_capacity(count);
    let rows: Vec<NewUser> = (0..count)
        .map(|i| NewUser {
            username: format!("user{i:05}"),
            email: format!("user{i:05}@bench.conduit.example"),
            password_hash: password_hash.to_owned(),
            bio: rng.random_bool(0.6).then(|| text::prose(rng, 60)),
            image: rng
                .random_bool(0.4)
                .then(|| format!("https://images.example/avatars/{i}.png")),
        })
        .collect();
    for chunk in rows.chunks(MAX_PARAMS / 5) {
        let chunk_ids: Vec<i64> = diesel::insert_into(users::table)
            .values(chunk)
            .returning(users::id)
            .get_results(conn)
            .await?;
        ids.extend(chunk_ids);
    }
    Ok(ids)
}

pub(super) async fn insert_follows(
    conn: &mut AsyncPgConnection,
    rng: &mut StdRng,
    user_ids: &[i64],
    reader_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, DatasetError> {
    let mut rows = Vec::new();
    for (index, &follower) in user_ids.iter().enumerate() {
        let count = count_with_mean(rng, MEAN_FOLLOWS);
        for followed in distinct_skewed(rng, user_ids.len(), count, Some(index)) {
            rows.push((follower, user_ids[followed]));
        }
    }
    // The reader follows 50 of the most prolific authors: a busy feed.
    for followed in distinct_skewed(rng, user_ids.len(), READER_FOLLOWS, None) {
        rows.push((reader_id, user_ids[followed]));
    }
    let total = rows.len();
    for chunk in rows.chunks(MAX_PARAMS / 3) {
        let values: Vec<_> = chunk
            .iter()
            .map(|&(follower, followed)| {
                (
                    follows::follower_id.eq(follower),
                    follows::followed_id.eq(followed),
                    follows::created_at.eq(now),
                )
            })
            .collect();
        diesel::insert_into(follows::table)
            .values(values)
            .execute(conn)
            .await?;
    }
    Ok(total)
}

pub(super) async fn insert_article_tags(
    conn: &mut AsyncPgConnection,
    rng: &mut StdRng,
    article_ids: &[i64],
    tag_ids: &[i64],
) -> Result<usize, DatasetError> {
    let mut rows = Vec::new();
    for &article in article_ids {
        let count = rng.random_range(1..=5);
        for tag in distinct_skewed(rng, tag_ids.len(), count, None) {
            rows.push((
                article_tags::article_id.eq(article),
                article_tags::tag_id.eq(tag_ids[tag]),
            ));
        }
    }
    for chunk in rows.chunks(MAX_PARAMS / 2) {
        diesel::insert_into(article_tags::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(rows.len())
}

pub(super) async fn insert_favorites(
    conn: &mut AsyncPgConnection,
    rng: &mut StdRng,
    article_ids: &[i64],
    user_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<usize, DatasetError> {
    let mut rows = Vec::new();
    for &article in article_ids {
        let count = count_with_mean(rng, MEAN_FAVORITES);
        for user in distinct_skewed(rng, user_ids.len(), count, None) {
            rows.push((
                favorites::user_id.eq(user_ids[user]),
                favorites::article_id.eq(article),
                favorites::created_at.eq(now),
            ));
        }
    }
    for chunk in rows.chunks(MAX_PARAMS / 3) {
        diesel::insert_into(favorites::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(rows.len())
}

pub(super) async fn insert_comments(
    conn: &mut AsyncPgConnection,
    rng: &mut StdRng,
    article_ids: &[i64],
    created: &[DateTime<Utc>],
    user_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<usize, DatasetError> {
    let mut rows = Vec::new();
    for (&article, &article_created) in article_ids.iter().zip(created) {
        for _ in 0..count_with_mean(rng, MEAN_COMMENTS) {
            let age = (now - article_created).num_seconds().max(1);
            let created_at = article_created + Duration::seconds(rng.random_range(0..age));
            let length = rng.random_range(40..400);
            rows.push(NewComment {
                article_id: article,
                author_id: user_ids[rng.random_range(0..user_ids.len())],
                body: text::prose(rng, length),
                created_at,
                updated_at: created_at,
            });
        }
    }
    for chunk in rows.chunks(MAX_PARAMS / 5) {
        diesel::insert_into(comments::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(rows.len())
}

/// The comments scenario needs comments to list: give the sample article
/// a typical handful if the draw gave it none.
pub(super) async fn ensure_sample_has_comments(
    conn: &mut AsyncPgConnection,
    slug: &str,
    user_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), DatasetError> {
    let article_id: i64 = articles::table
        .filter(articles::slug.eq(slug))
        .select(articles::id)
        .get_result(conn)
        .await?;
    let existing: i64 = comments::table
        .filter(comments::article_id.eq(article_id))
        .count()
        .get_result(conn)
        .await?;
    let missing = 5usize.saturating_sub(existing as usize);
    let rows: Vec<NewComment> = user_ids
        .iter()
        .take(missing)
        .map(|&author_id| NewComment {
            article_id,
            author_id,
            body: "A comment of typical length for the comments scenario.".into(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    diesel::insert_into(comments::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}
