//! Every migration reverts to exactly the schema and rows before it, the
//! seed's revert takes only its rows, and every foreign key has an index.

use std::process::Command;

use conduit::db::migrations::MigrationSet;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;

use crate::migrations::{
    applied_versions, embedded_in_order, execute, migrate_all, step, try_step,
};
use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;

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
