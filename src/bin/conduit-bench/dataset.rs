//! A dataset in realistic proportions, the same for the same seed and
//! scale: at scale 1, 10,000 users following about 20 others each, 100,000
//! articles (a few prolific authors, a long tail) with 1 to 5 tags from a
//! pool of 200, about 5 favorites and 3 comments per article. Rows go in as
//! multi-row INSERTs of thousands of rows, typed by `conduit::schema`.

mod draw;
mod rows;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use conduit::schema::{articles, tags, users};

use crate::text;
use draw::skewed;
use rows::{
    ensure_sample_has_comments, insert_article_tags, insert_comments, insert_favorites,
    insert_follows, insert_users, NewArticle, NewUser,
};

const USERS_AT_SCALE_1: f64 = 10_000.0;
const ARTICLES_AT_SCALE_1: f64 = 100_000.0;
const TAG_POOL: usize = 200;
const MEAN_FOLLOWS: f64 = 20.0;
const MEAN_FAVORITES: f64 = 5.0;
const MEAN_COMMENTS: f64 = 3.0;
/// The reader of the feed scenario follows exactly this many authors.
const READER_FOLLOWS: usize = 50;
/// PostgreSQL takes at most 65,535 bind parameters per statement.
const MAX_PARAMS: usize = 60_000;

pub const READER_USERNAME: &str = "bench-reader";
pub const READER_EMAIL: &str = "reader@bench.conduit.example";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// 1 = 10,000 users and 100,000 articles.
    #[arg(long, env = "BENCH_SCALE", default_value_t = 1.0)]
    scale: f64,
    #[arg(long, default_value_t = 20_261_126)]
    seed: u64,
    /// The password of every generated user (hashed once, with the server's
    /// parameters, so that logins cost what they cost in production).
    #[arg(long, default_value = "bench-password")]
    password: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scale: f64,
    pub users: usize,
    pub follows: usize,
    pub articles: usize,
    pub tags: usize,
    pub article_tags: usize,
    pub favorites: usize,
    pub comments: usize,
    pub rows: usize,
    pub load_seconds: f64,
    pub rows_per_second: f64,
    pub vacuum_analyze_seconds: f64,
    pub reader_email: &'static str,
    pub reader_follows: usize,
    /// Usernames of generated users, for the login scenario.
    pub login_usernames: Vec<String>,
    /// The most used tag, for the tag scenario.
    pub popular_tag: String,
    /// An article with comments, for the single-article scenarios.
    pub sample_slug: String,
}

/// Why the dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("could not connect: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("the scale must be positive and at most 100, not {0}")]
    Scale(f64),
}

/// Fills the database `args` names; says what it loaded and how fast.
pub async fn load(args: Args) -> Result<Report, DatasetError> {
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        return Err(DatasetError::Scale(args.scale));
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut conn = AsyncPgConnection::establish(&args.database_url).await?;
    // Bench data can be regenerated: no need to wait for each commit's flush.
    conn.batch_execute("SET synchronous_commit = off").await?;
    let password_hash = conduit::auth::password::hash_blocking(&args.password)
        .map_err(|e| DatasetError::Hash(e.to_string()))?;

    let n_users = ((USERS_AT_SCALE_1 * args.scale).round() as usize).max(READER_FOLLOWS + 10);
    let n_articles = ((ARTICLES_AT_SCALE_1 * args.scale).round() as usize).max(100);
    let now = Utc::now();
    let started = Instant::now();
    let mut report = Report {
        scale: args.scale,
        reader_email: READER_EMAIL,
        reader_follows: READER_FOLLOWS,
        ..Report::default()
    };

    let user_ids = insert_users(&mut conn, &mut rng, n_users, &password_hash).await?;
    let reader_id = diesel::insert_into(users::table)
        .values(NewUser {
            username: READER_USERNAME.into(),
            email: READER_EMAIL.into(),
            password_hash: password_hash.clone(),
            bio: None,
            image: None,
        })
        .returning(users::id)
        .get_result::<i64>(&mut conn)
        .await?;
    report.users = user_ids.len() + 1;
    report.login_usernames = (0..16).map(|i| format!("user{i:05}")).collect();

    report.follows = insert_follows(&mut conn, &mut rng, &user_ids, reader_id, now).await?;

    let tag_names: Vec<String> = (0..TAG_POOL)
        .map(|i| format!("{}-{}", text::word(&mut rng), i))
        .collect();
    let tag_ids: Vec<i64> = diesel::insert_into(tags::table)
        .values(
            tag_names
                .iter()
                .map(|name| tags::name.eq(name))
                .collect::<Vec<_>>(),
        )
        .returning(tags::id)
        .get_results(&mut conn)
        .await?;
    report.tags = tag_ids.len();
    report.popular_tag = tag_names[0].clone();

    let per_chunk = MAX_PARAMS / 7;
    let mut article_number = 0;
    while article_number < n_articles {
        let size = per_chunk.min(n_articles - article_number);
        let rows: Vec<NewArticle> = (article_number..article_number + size)
            .map(|i| {
                let title = text::prose(&mut rng, 20).trim_end_matches('.').to_owned();
                let created_at = now - Duration::seconds(rng.random_range(60..2 * 365 * 86_400));
                NewArticle {
                    author_id: user_ids[skewed(&mut rng, user_ids.len())],
                    slug: format!("{}-{i}", title.to_lowercase().replace(' ', "-")),
                    description: text::prose(&mut rng, 80),
                    body: {
                        let length = rng.random_range(400..3_000);
                        text::prose(&mut rng, length)
                    },
                    title,
                    created_at,
                    updated_at: created_at,
                }
            })
            .collect();
        let created: Vec<DateTime<Utc>> = rows.iter().map(|a| a.created_at).collect();
        let ids: Vec<i64> = diesel::insert_into(articles::table)
            .values(&rows)
            .returning(articles::id)
            .get_results(&mut conn)
            .await?;
        drop(rows);
        report.articles += ids.len();
        if report.sample_slug.is_empty() {
            report.sample_slug = articles::table
                .filter(articles::id.eq(ids[0]))
                .select(articles::slug)
                .get_result(&mut conn)
                .await?;
        }
        report.article_tags += insert_article_tags(&mut conn, &mut rng, &ids, &tag_ids).await?;
        report.favorites += insert_favorites(&mut conn, &mut rng, &ids, &user_ids, now).await?;
        report.comments +=
            insert_comments(&mut conn, &mut rng, &ids, &created, &user_ids, now).await?;
        article_number += size;
    }
    ensure_sample_has_comments(&mut conn, &report.sample_slug, &user_ids, now).await?;

    report.load_seconds = started.elapsed().as_secs_f64();
    report.rows = report.users
        + report.follows
        + report.articles
        + report.tags
        + report.article_tags
        + report.favorites
        + report.comments;
    report.rows_per_second = report.rows as f64 / report.load_seconds;

    let vacuum = Instant::now();
    conn.batch_execute("VACUUM (ANALYZE)").await?;
    // The load dirtied about a gigabyte of pages: written now, they cannot
    // stall whichever scenario runs first with a checkpoint of their own.
    conn.batch_execute("CHECKPOINT").await?;
    report.vacuum_analyze_seconds = vacuum.elapsed().as_secs_f64();
    Ok(report)
}
