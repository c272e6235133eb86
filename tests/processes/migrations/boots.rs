//! Boots apply the migrations: from nothing, again, eight servers at
//! once, a failing migration, a strict schema.

use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use serde_json::json;

use crate::migrations::{applied_versions, embedded_in_order, execute, migrate_all, try_step};
use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;
use crate::support::process::{fixture, get_json, ConduitProcess, BOOT};

#[tokio::test]
async fn clean_start_on_an_empty_database_migrates_seeds_and_becomes_ready() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &["serve"], &[]);

    let address = server.wait_ready(BOOT).await.unwrap();

    let (status, body) = get_json(&format!("http://{address}/ready")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ready", "schema_version": embedded::newest(), "pending_migrations": []})
    );
    let mut conn = db.connect().await;
    let tables = select_texts(
        &mut conn,
        "SELECT table_name::text AS value FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .await;
    assert_eq!(
        tables,
        [
            "__conduit_migration_checksums",
            "__diesel_schema_migrations",
            "article_count_shards",
            "article_tags",
            "articles",
            "comments",
            "favorites",
            "follows",
            "seeded_demo_account",
            "sessions",
            "tag_link_count_shards",
            "tags",
            "throttle_counters",
            "users"
        ]
    );
    assert_eq!(applied_versions(&db).await, embedded::versions());
    let hashes = select_texts(
        &mut conn,
        "SELECT password_hash AS value FROM users \
         WHERE username = 'demo' AND email = 'demo@example.com'",
    )
    .await;
    assert_eq!(hashes.len(), 1, "exactly one demo user");
    let hash = PasswordHash::new(&hashes[0]).expect("a PHC string");
    assert_eq!(hash.algorithm.as_str(), "argon2id");
    assert!(Argon2::default()
        .verify_password(b"conduit-demo", &hash)
        .is_ok());
    assert!(Argon2::default()
        .verify_password(b"not-the-password", &hash)
        .is_err());
    let tags = select_texts(
        &mut conn,
        "SELECT t.name AS value FROM articles a \
         JOIN users u ON u.id = a.author_id AND u.username = 'demo' \
         JOIN article_tags at ON at.article_id = a.id JOIN tags t ON t.id = at.tag_id \
         WHERE a.title = 'Welcome to Conduit' ORDER BY t.name",
    )
    .await;
    assert_eq!(tags, ["conduit", "welcome"]);
    assert!(server.errors().is_empty(), "{}", server.output());
}

#[tokio::test]
async fn a_second_boot_applies_nothing_and_says_the_schema_is_up_to_date() {
    let db = TestDatabase::create().await;
    let mut first = ConduitProcess::spawn(&db.url(), &[], &[]);
    first.wait_ready(BOOT).await.unwrap();
    drop(first);

    let mut second = ConduitProcess::spawn(&db.url(), &[], &[]);
    second.wait_ready(BOOT).await.unwrap();

    let messages: Vec<String> = second
        .log_events()
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        messages.iter().any(|m| m == "schema up to date at 012"),
        "{messages:#?}"
    );
    assert!(
        !messages.iter().any(|m| m.starts_with("applied migration")),
        "{messages:#?}"
    );
    assert_eq!(applied_versions(&db).await, embedded::versions());
}

/// Starts `count` servers at once on one database and waits for all.
async fn boot_concurrently(
    db: &TestDatabase,
    count: usize,
    args: &[&str],
) -> (Vec<ConduitProcess>, Duration) {
    let started = Instant::now();
    let mut servers: Vec<ConduitProcess> = (0..count)
        .map(|_| ConduitProcess::spawn(&db.url(), args, &[]))
        .collect();
    for server in &mut servers {
        server.wait_ready(BOOT).await.unwrap();
    }
    (servers, started.elapsed())
}

/// Each of `versions` recorded once, applied by exactly one of the servers,
/// and no server logged an error.
async fn assert_migrated_once(db: &TestDatabase, servers: &[ConduitProcess], versions: &[&str]) {
    assert_eq!(applied_versions(db).await, versions);
    let applied: Vec<String> = servers
        .iter()
        .flat_map(|s| s.log_events())
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .filter(|m| m.starts_with("applied migration"))
        .collect();
    assert_eq!(
        applied.len(),
        versions.len(),
        "each migration applied once: {applied:?}"
    );
    for server in servers {
        assert!(server.errors().is_empty(), "{}", server.output());
    }
}

#[tokio::test]
async fn eight_servers_booting_at_once_apply_each_migration_exactly_once() {
    let db = TestDatabase::create().await;

    let (servers, took) = boot_concurrently(&db, 8, &["serve"]).await;
    eprintln!("eight concurrent boots ready in {took:?}");

    assert_migrated_once(
        &db,
        &servers,
        &embedded::versions()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let mut conn = db.connect().await;
    let demo = select_texts(
        &mut conn,
        "SELECT count(*)::text AS value FROM users WHERE username = 'demo'",
    )
    .await;
    assert_eq!(demo, ["1"]);
}

#[tokio::test]
async fn eight_servers_at_once_with_a_concurrent_index_migration_leave_a_valid_index() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_concurrent_index");

    let (servers, took) =
        boot_concurrently(&db, 8, &["serve", "--migrations-dir", dir.as_str()]).await;
    eprintln!("eight concurrent boots with CREATE INDEX CONCURRENTLY ready in {took:?}");

    assert_migrated_once(&db, &servers, &["001", "002"]).await;
    let mut conn = db.connect().await;
    let validity = select_texts(
        &mut conn,
        "SELECT (indisvalid AND indisready)::text AS value FROM pg_index \
         WHERE indexrelid = 'widgets_name_idx'::regclass",
    )
    .await;
    assert_eq!(validity, ["true"]);
}

#[tokio::test]
async fn a_failing_migration_stops_boot_naming_it_and_leaves_the_previous_version() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_failing");
    let mut server = ConduitProcess::spawn(&db.url(), &["serve", "--migrations-dir", &dir], &[]);

    let status = server.wait_exit(BOOT).await.unwrap();

    assert!(!status.success());
    let output = server.output();
    assert!(
        output.contains("migration 002_broken_gadget_parts failed"),
        "{output}"
    );
    assert!(output.contains("invalid input syntax"), "{output}");
    assert_eq!(applied_versions(&db).await, ["001"]);
    let mut conn = db.connect().await;
    let tables = select_texts(
        &mut conn,
        "SELECT table_name::text AS value FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name LIKE 'gadget%' ORDER BY table_name",
    )
    .await;
    assert_eq!(tables, ["gadgets"], "no trace of the failed migration");
}

/// CONDUIT_STRICT_SCHEMA refuses a database it does not know before it
/// applies anything, not after.
#[tokio::test]
async fn strict_schema_refuses_before_applying_pending_migrations() {
    let db = TestDatabase::create().await;
    migrate_all(&db).await;
    let newest = embedded_in_order().len() - 1;
    try_step(&db, newest, "down").await.unwrap();
    let mut conn = db.connect().await;
    execute(
        &mut conn,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('999')",
    )
    .await;
    let before = applied_versions(&db).await;

    let mut server =
        ConduitProcess::spawn(&db.url(), &["serve"], &[("CONDUIT_STRICT_SCHEMA", "true")]);
    let status = server.wait_exit(BOOT).await.unwrap();

    assert!(!status.success(), "{}", server.output());
    assert!(server.output().contains("999"), "{}", server.output());
    assert_eq!(applied_versions(&db).await, before, "nothing was applied");
}
