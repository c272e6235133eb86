//! Migrations of data: the recount, the case-insensitive usernames and the
//! tag counts, exact while links change and under concurrent writers.

use std::time::Duration;

use crate::migrations::{embedded_in_order, execute, migrate_all, try_step};
use crate::support::database::{select_texts, TestDatabase};

/// 003 counted the articles before its triggers existed; an article
/// committed in between was never counted. 004 counts again: whatever the
/// shards say before, they add up to the real count after.
#[tokio::test]
async fn the_recount_migration_repairs_a_count_that_missed_articles() {
    let db = TestDatabase::create().await;
    migrate_all(&db).await;
    let mut conn = db.connect().await;
    // The article 003's count missed: in the table, not in the shards.
    execute(
        &mut conn,
        "INSERT INTO users (username, email, password_hash) \
         VALUES ('late', 'late@example.org', '$argon2id$late')",
    )
    .await;
    execute(
        &mut conn,
        "INSERT INTO articles (author_id, slug, title, description, body) \
         SELECT id, 'late', 'Late', 'd', 'b' FROM users WHERE username = 'late'",
    )
    .await;
    execute(&mut conn, "UPDATE article_count_shards SET articles = articles - 1 WHERE shard = (SELECT min(shard) FROM article_count_shards WHERE articles > 0)").await;
    let kept_and_real = "SELECT format('%s/%s', (SELECT sum(articles) FROM article_count_shards), \
                         (SELECT count(*) FROM articles)) AS value";
    assert_eq!(select_texts(&mut conn, kept_and_real).await, ["1/2"]);

    let recount = embedded_in_order()
        .iter()
        .position(|m| m.name().to_string() == "004_recount_articles")
        .expect("the recount migration");
    try_step(&db, recount, "down").await.unwrap();
    try_step(&db, recount, "up").await.unwrap();

    assert_eq!(select_texts(&mut conn, kept_and_real).await, ["2/2"]);
}

/// 005 makes usernames unique whatever their case; where accounts already
/// differ only in case it stops, naming them, and deletes nothing.
#[tokio::test]
async fn the_case_insensitive_username_migration_lists_conflicts_and_deletes_nothing() {
    let db = TestDatabase::create().await;
    migrate_all(&db).await;
    let unique = embedded_in_order()
        .iter()
        .position(|m| m.name().to_string() == "005_username_unique_any_case")
        .expect("the migration");
    try_step(&db, unique, "down").await.unwrap();
    let mut conn = db.connect().await;
    for (name, email) in [("Bob", "bob1@example.org"), ("bob", "bob2@example.org")] {
        execute(
            &mut conn,
            &format!(
                "INSERT INTO users (username, email, password_hash) \
                 VALUES ('{name}', '{email}', '$argon2id$x')"
            ),
        )
        .await;
    }

    let refused = try_step(&db, unique, "up").await.unwrap_err();

    assert!(
        refused.contains("usernames that differ only in case"),
        "{refused}"
    );
    assert!(
        refused.contains("Bob (id") && refused.contains("bob (id"),
        "{refused}"
    );
    let bobs = "SELECT count(*)::text AS value FROM users WHERE lower(username) = 'bob'";
    assert_eq!(select_texts(&mut conn, bobs).await, ["2"]);

    execute(
        &mut conn,
        "UPDATE users SET username = 'bob-2' WHERE username = 'bob'",
    )
    .await;
    try_step(&db, unique, "up").await.unwrap();
    let refused = diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO users (username, email, password_hash) VALUES ('BOB', 'b3@example.org', '$argon2id$x')",
        ),
        &mut conn,
    )
    .await;
    assert!(refused.is_err(), "a third Bob got in");
}

/// 010 creates the per-tag counts and backfills them while writers (an
/// older binary during a rolling upgrade does not know the table) change
/// links: whatever commits before, during or after the backfill, every
/// count is exact once it is done. Then down and up again on that data.
#[tokio::test]
async fn the_tag_count_migration_is_exact_while_links_change_and_reverts() {
    use crate::support::tag_links;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const WRITERS: usize = 8;
    let db = TestDatabase::create().await;
    migrate_all(&db).await;
    let counts = embedded_in_order()
        .iter()
        .position(|m| m.name().to_string() == "010_tag_link_counts")
        .expect("the migration");
    try_step(&db, counts, "down").await.unwrap();
    let mut conn = db.connect().await;
    tag_links::seed(&mut conn, WRITERS).await;
    // Enough tags for several backfill batches of 1,000.
    execute(
        &mut conn,
        "INSERT INTO tags (name) SELECT 'bulk-' || n FROM generate_series(1, 2500) AS n",
    )
    .await;
    execute(
        &mut conn,
        "INSERT INTO article_tags (article_id, tag_id) \
         SELECT a.id, t.id FROM articles a, tags t \
         WHERE a.slug = 'welcome-to-conduit' AND t.name LIKE 'bulk-%'",
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers = tag_links::start_writers(&db.url, WRITERS, 20, &stop);
    // Writers are busy before the triggers exist and go on after.
    tokio::time::sleep(Duration::from_millis(200)).await;
    try_step(&db, counts, "up").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    tag_links::assert_writers_left_counts_exact(&mut conn, writers).await;
    let bulk = "SELECT sum(links)::text AS value FROM tag_link_count_shards s \
                JOIN tags t ON t.id = s.tag_id WHERE t.name LIKE 'bulk-%'";
    assert_eq!(select_texts(&mut conn, bulk).await, ["2500"]);

    try_step(&db, counts, "down").await.unwrap();
    let leftovers = "SELECT count(*)::text AS value FROM pg_class \
                     WHERE relname LIKE 'tag_link_count%' \
                     UNION ALL SELECT count(*)::text FROM pg_trigger \
                     WHERE tgname LIKE 'article_tags_count%'";
    assert_eq!(select_texts(&mut conn, leftovers).await, ["0", "0"]);
    execute(
        &mut conn,
        "DELETE FROM article_tags WHERE tag_id IN (SELECT id FROM tags WHERE name LIKE 'bulk-1%')",
    )
    .await;
    try_step(&db, counts, "up").await.unwrap();
    tag_links::assert_counts_exact(&mut conn).await;
    assert_eq!(select_texts(&mut conn, bulk).await, ["1389"]);
}

/// Writers on many connections replacing their articles' links in crossing
/// tag orders, deleting articles and users meanwhile: no transaction fails
/// (a count row taking part in a deadlock would fail one), every count
/// stays exact, and a tag has no more shard rows than its writers' held
/// locks. Here rather than in tests/api: its load would upset the
/// timing-sensitive throttle tests that run beside them.
#[tokio::test]
async fn the_kept_tag_counts_stay_exact_under_concurrent_writers() {
    use crate::support::tag_links;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    const WRITERS: usize = 12;
    let db = TestDatabase::create().await;
    migrate_all(&db).await;
    let mut conn = db.connect().await;
    tag_links::seed(&mut conn, WRITERS).await;
    let stop = Arc::new(AtomicBool::new(true));

    let writers = tag_links::start_writers(&db.url, WRITERS, 60, &stop);
    tag_links::assert_writers_left_counts_exact(&mut conn, writers).await;
}
