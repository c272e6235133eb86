//! Writers that change tag links concurrently, in SQL (as any binary,
//! older or newer, would), and the check that migration 010's kept count of
//! each tag's links equals a real count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

use super::database::{connect, select_texts};

/// The tags the writers draw from: few, so that they collide.
pub const TAGS: [&str; 5] = ["churn-a", "churn-b", "churn-c", "churn-d", "churn-e"];

/// Tags whose kept count differs from a real count, as "name: kept K, real R"
/// (empty when every count is exact).
pub const MISCOUNTED: &str =
    "SELECT format('%s: kept %s, real %s', t.name, kept.links, real.links) AS value \
     FROM tags t \
     CROSS JOIN LATERAL (SELECT COALESCE(sum(links), 0) AS links \
                         FROM tag_link_count_shards s WHERE s.tag_id = t.id) AS kept \
     CROSS JOIN LATERAL (SELECT count(*) AS links \
                         FROM article_tags l WHERE l.tag_id = t.id) AS real \
     WHERE kept.links <> real.links ORDER BY t.name";

/// The most shard rows any tag has.
pub const MOST_SHARDS: &str = "SELECT COALESCE(max(n), 0)::text AS value \
     FROM (SELECT count(*) AS n FROM tag_link_count_shards GROUP BY tag_id) AS per_tag";

/// A small deterministic generator: the tests need variety, not quality.
struct Draws(u64);

impl Draws {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }

    /// One to four distinct tags, in a random order (so that concurrent
    /// writers insert and delete links of the same tags in crossing orders).
    fn tags(&mut self) -> Vec<&'static str> {
        let mut picked: Vec<&str> = Vec::new();
        for _ in 0..=self.next(4) {
            let tag = TAGS[self.next(TAGS.len() as u64) as usize];
            if !picked.contains(&tag) {
                picked.push(tag);
            }
        }
        picked
    }
}

/// `INSERT` of the links of the newest article of `user` to `tags`, in
/// that order.
fn link(user: &str, tags: &[&str]) -> String {
    let names = tags
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "INSERT INTO article_tags (article_id, tag_id) \
         SELECT (SELECT max(a.id) FROM articles a JOIN users u ON u.id = a.author_id \
                 WHERE u.username = '{user}'), t.id \
         FROM unnest(ARRAY[{names}]) WITH ORDINALITY AS wanted(name, position) \
         JOIN tags t ON t.name = wanted.name ORDER BY wanted.position"
    )
}

fn new_article(user: &str, round: usize) -> String {
    format!(
        "INSERT INTO articles (author_id, slug, title, description, body) \
         SELECT id, '{user}-{round}', 't', 'd', 'b' FROM users WHERE username = '{user}'"
    )
}

fn new_user(user: &str) -> String {
    format!(
        "INSERT INTO users (username, email, password_hash) \
         VALUES ('{user}', '{user}@example.org', '$argon2id$churn')"
    )
}

/// Creates the shared tags and `writers` users, each with one tagged
/// article.
pub async fn seed(conn: &mut AsyncPgConnection, writers: usize) {
    let names = TAGS
        .iter()
        .map(|t| format!("('{t}')"))
        .collect::<Vec<_>>()
        .join(",");
    run(
        conn,
        &format!("INSERT INTO tags (name) VALUES {names} ON CONFLICT DO NOTHING"),
    )
    .await;
    for writer in 0..writers {
        let user = format!("churn{writer}");
        let mut draws = Draws(0x9E37_79B9_7F4A_7C15 ^ writer as u64);
        run(conn, &new_user(&user)).await;
        run(conn, &new_article(&user, 0)).await;
        run(conn, &link(&user, &draws.tags())).await;
    }
}

async fn run(conn: &mut AsyncPgConnection, sql: &str) {
    conn.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// One transaction, one statement per round trip; rolled back on error.
async fn transaction(conn: &mut AsyncPgConnection, statements: &[String]) -> Result<(), String> {
    conn.batch_execute("BEGIN")
        .await
        .map_err(|e| e.to_string())?;
    for sql in statements {
        if let Err(e) = conn.batch_execute(sql).await {
            let _ = conn.batch_execute("ROLLBACK").await;
            return Err(format!("{sql}: {e}"));
        }
    }
    conn.batch_execute("COMMIT")
        .await
        .map_err(|e| e.to_string())
}

/// Writer `writer` (seeded by [`seed`]) changes its article's tags until
/// `stop` is set and it has done at least `rounds` transactions: replacing
/// them (delete, then insert, as a tag update does), deleting the article
/// (links cascade) for a new one, or deleting its user (articles and links
/// cascade) and starting again. Returns the errors, e.g. deadlocks.
pub async fn churn(
    url: url::Url,
    writer: usize,
    rounds: usize,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut conn = connect(&url).await;
    let user = format!("churn{writer}");
    let mut draws = Draws(0xD1B5_4A32_D192_ED03 ^ (writer as u64 + 1));
    let mut errors = Vec::new();
    let mut round = 0;
    while round < rounds || !stop.load(Ordering::Relaxed) {
        round += 1;
        let newest = format!(
            "(SELECT max(a.id) FROM articles a JOIN users u ON u.id = a.author_id \
              WHERE u.username = '{user}')"
        );
        let statements = match draws.next(10) {
            0 => vec![
                format!("DELETE FROM articles WHERE id = {newest}"),
                new_article(&user, round),
                link(&user, &draws.tags()),
            ],
            1 => vec![
                format!("DELETE FROM users WHERE username = '{user}'"),
                new_user(&user),
                new_article(&user, round),
                link(&user, &draws.tags()),
            ],
            _ => vec![
                format!("DELETE FROM article_tags WHERE article_id = {newest}"),
                link(&user, &draws.tags()),
            ],
        };
        if let Err(error) = transaction(&mut conn, &statements).await {
            errors.push(error);
        }
    }
    errors
}

/// `writers` writers ([`churn`]) started at once, each on its own connection.
pub fn start_writers(
    url: &url::Url,
    writers: usize,
    rounds: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..writers)
        .map(|writer| tokio::spawn(churn(url.clone(), writer, rounds, stop.clone())))
        .collect()
}

/// Waits for `writers` to end, then: none of their transactions failed,
/// every kept count is exact, and no tag has more shard rows than twice
/// the writers.
pub async fn assert_writers_left_counts_exact(
    conn: &mut AsyncPgConnection,
    writers: Vec<tokio::task::JoinHandle<Vec<String>>>,
) {
    let started = writers.len();
    let mut errors = Vec::new();
    for writer in writers {
        errors.extend(writer.await.unwrap());
    }
    assert!(errors.is_empty(), "{errors:#?}");
    assert_counts_exact(conn).await;
    let most = select_texts(conn, MOST_SHARDS).await;
    assert!(most[0].parse::<usize>().unwrap() <= 2 * started, "{most:?}");
}

/// The kept counts are exact.
pub async fn assert_counts_exact(conn: &mut AsyncPgConnection) {
    let wrong = select_texts(conn, MISCOUNTED).await;
    assert!(wrong.is_empty(), "kept tag counts differ: {wrong:?}");
}
