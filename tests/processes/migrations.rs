//! Migration scenarios, each on an empty database of its own, with the real
//! binary: clean start, second boot, concurrent boots, a failing migration,
//! reversibility and foreign-key indexes.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;
use crate::support::process::{fixture, get_json, ConduitProcess};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use conduit::db::migrations::{MigrationSet, EMBEDDED_MIGRATIONS};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;
use serde_json::json;

const BOOT: Duration = Duration::from_secs(90);

async fn applied_versions(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations ORDER BY run_on, version",
    )
    .await
}

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

fn pg_dump_schema(url: &str) -> String {
    let output = Command::new(std::env::var("PG_DUMP").unwrap_or_else(|_| "pg_dump".into()))
        .args(["--schema-only", "--no-owner", "--no-privileges", url])
        .output()
        .expect("run pg_dump (set PG_DUMP to its path if it is not on PATH)");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // \restrict carries a random key per dump; it is not part of the schema.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn row_counts(conn: &mut AsyncPgConnection) -> Vec<String> {
    select_texts(
        conn,
        "SELECT format('%s=%s', table_name, \
                (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I', table_name), false, true, '')))[1]::text) AS value \
         FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_\\_%' \
         ORDER BY table_name",
    )
    .await
}

/// The embedded migrations, oldest first. Migrations are not `Send`, so
/// each blocking task loads its own.
fn embedded_in_order() -> Vec<Box<dyn diesel::migration::Migration<Pg>>> {
    let mut migrations = MigrationSource::<Pg>::migrations(&EMBEDDED_MIGRATIONS).unwrap();
    migrations.sort_by_key(|m| m.name().version().to_string());
    migrations
}

/// Runs `steps` ("up"/"down") of the `index`th embedded migration.
async fn step(db: &TestDatabase, index: usize, steps: &'static [&'static str]) -> String {
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(db.connect().await);
    tokio::task::spawn_blocking(move || {
        let migration = embedded_in_order().swap_remove(index);
        // Creates diesel's bookkeeping table on first use.
        harness.applied_migrations().unwrap();
        for direction in steps {
            match *direction {
                "up" => harness.run_migration(migration.as_ref()).map(drop),
                _ => harness.revert_migration(migration.as_ref()).map(drop),
            }
            .unwrap_or_else(|e| panic!("{} {direction}: {e}", migration.name()));
        }
        migration.name().to_string()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_migration_reverts_to_exactly_the_schema_and_rows_before_it() {
    let db = TestDatabase::create().await;
    let count = embedded_in_order().len();
    assert!(count >= 2);
    let url = db.url();
    let mut conn = db.connect().await;
    // Bookkeeping first, so that it is in every dump compared below.
    step(&db, 0, &[]).await;

    for index in 0..count {
        let schema_before = pg_dump_schema(&url);
        let rows_before = row_counts(&mut conn).await;

        let name = step(&db, index, &["up", "down"]).await;

        assert_eq!(
            pg_dump_schema(&url),
            schema_before,
            "{name}: down.sql does not undo up.sql"
        );
        assert_eq!(row_counts(&mut conn).await, rows_before, "{name}: rows");
        step(&db, index, &["up"]).await;
    }
}

#[tokio::test]
async fn every_foreign_key_has_an_index_starting_with_its_columns() {
    let db = TestDatabase::create().await;
    let conn = db.connect().await;
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
    tokio::task::spawn_blocking(move || {
        harness
            .run_pending_migrations(MigrationSet::Embedded)
            .unwrap();
    })
    .await
    .unwrap();
    let mut conn = db.connect().await;

    let foreign_keys = select_texts(
        &mut conn,
        "SELECT conname::text AS value FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
    )
    .await;
    let unindexed = select_texts(
        &mut conn,
        "SELECT format('%s.%s', c.conrelid::regclass, c.conname) AS value \
         FROM pg_constraint c \
         WHERE c.contype = 'f' AND NOT EXISTS ( \
           SELECT 1 FROM pg_index i \
           WHERE i.indrelid = c.conrelid \
             AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] @> c.conkey \
             AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] <@ c.conkey) \
         ORDER BY 1",
    )
    .await;

    assert!(foreign_keys.len() >= 10, "{foreign_keys:?}");
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:?}"
    );
}

/// As [`step`], but a failing step is returned, not a panic.
async fn try_step(
    db: &TestDatabase,
    index: usize,
    direction: &'static str,
) -> Result<String, String> {
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(db.connect().await);
    tokio::task::spawn_blocking(move || {
        let migration = embedded_in_order().swap_remove(index);
        harness.applied_migrations().map_err(|e| e.to_string())?;
        match direction {
            "up" => harness.run_migration(migration.as_ref()).map(drop),
            _ => harness.revert_migration(migration.as_ref()).map(drop),
        }
        .map_err(|e| format!("{}: {e}", migration.name()))?;
        Ok(migration.name().to_string())
    })
    .await
    .unwrap()
}

async fn migrate_all(db: &TestDatabase) {
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(db.connect().await);
    tokio::task::spawn_blocking(move || {
        harness
            .run_pending_migrations(MigrationSet::Embedded)
            .unwrap();
    })
    .await
    .unwrap();
}

async fn execute(conn: &mut AsyncPgConnection, sql: &str) {
    use diesel_async::RunQueryDsl;
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

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

/// Reverting 002 removes exactly the demo account, its article and tags,
/// and 002 applies again afterwards, with other users' data untouched;
/// when that is impossible (the tags are in use elsewhere, or another
/// account took the name), the revert refuses and changes nothing,
/// instead of leaving a database where 002 can never apply again.
#[tokio::test]
async fn reverting_the_seed_takes_exactly_its_rows_or_refuses() {
    let db = TestDatabase::create().await;
    migrate_all(&db).await;
    let mut conn = db.connect().await;
    execute(
        &mut conn,
        "INSERT INTO users (username, email, password_hash) \
         VALUES ('other', 'other@example.org', '$argon2id$other')",
    )
    .await;
    execute(
        &mut conn,
        "INSERT INTO articles (author_id, slug, title, description, body) \
         SELECT id, 'others', 'Others', 'd', 'b' FROM users WHERE username = 'other'",
    )
    .await;
    execute(
        &mut conn,
        "INSERT INTO article_tags (article_id, tag_id) \
         SELECT a.id, t.id FROM articles a, tags t WHERE a.slug = 'others' AND t.name = 'welcome'",
    )
    .await;
    let seed = 1;
    let everything = "SELECT string_agg(format('%s:%s', u.username, coalesce(a.slug, '-')), ' ' \
                      ORDER BY u.username, a.slug) AS value \
                      FROM users u LEFT JOIN articles a ON a.author_id = u.id";
    let before = select_texts(&mut conn, everything).await;

    let refused = try_step(&db, seed, "down").await.unwrap_err();
    assert!(
        refused.contains("other articles carry the tags welcome or conduit"),
        "{refused}"
    );
    assert_eq!(select_texts(&mut conn, everything).await, before);
    assert_eq!(applied_versions(&db).await, embedded::versions());

    // Without the shared tag, the revert takes the seed alone and 002
    // applies again on a database with other users' data.
    execute(&mut conn, "DELETE FROM article_tags WHERE article_id = (SELECT id FROM articles WHERE slug = 'others')").await;
    try_step(&db, seed, "down").await.unwrap();
    assert_eq!(select_texts(&mut conn, everything).await, ["other:others"]);
    try_step(&db, seed, "up").await.unwrap();
    assert_eq!(select_texts(&mut conn, everything).await, before);

    // The seed renamed, and someone else took the name: refused again,
    // and nobody's account is deleted.
    execute(
        &mut conn,
        "UPDATE users SET username = 'demo-old' WHERE username = 'demo'",
    )
    .await;
    execute(
        &mut conn,
        "UPDATE users SET username = 'demo' WHERE username = 'other'",
    )
    .await;
    let before = select_texts(&mut conn, everything).await;
    let refused = try_step(&db, seed, "down").await.unwrap_err();
    assert!(
        refused.contains("another account has the username demo"),
        "{refused}"
    );
    assert_eq!(select_texts(&mut conn, everything).await, before);
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
