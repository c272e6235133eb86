//! Migrations behind a lock: the timeout names the blocker and never
//! stalls readers longer than itself, and a retry after the blocker ends applies.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;

use crate::guard_rails::applied_versions;
use crate::support::database::{select_texts, wait_for_a_lock_waiter, TestDatabase};
use crate::support::process::{fixture, ConduitProcess};

// ---- 2. Lock timeouts diagnosed and retried ----

/// A connection named `long-report` reading `things` in an open
/// transaction: an ALTER TABLE on it waits for that transaction.
async fn hold_things(db: &TestDatabase) -> (diesel_async::AsyncPgConnection, String) {
    let mut setup = db.connect().await;
    setup
        .batch_execute("CREATE TABLE things (id INT)")
        .await
        .unwrap();
    let mut url = db.url.clone();
    url.query_pairs_mut()
        .append_pair("application_name", "long-report");
    let mut holder = crate::support::database::connect(&url).await;
    let pid = select_texts(&mut holder, "SELECT pg_backend_pid()::text AS value")
        .await
        .remove(0);
    holder
        .batch_execute("BEGIN; SELECT * FROM things")
        .await
        .unwrap();
    (holder, pid)
}

#[tokio::test]
async fn a_lock_timeout_names_the_blocker_retries_and_never_stalls_readers_longer_than_it() {
    let db = TestDatabase::create().await;
    let (mut holder, pid) = hold_things(&db).await;
    let dir = fixture("migrations_lock_timeout");
    let started = Instant::now();
    let mut migration = ConduitProcess::spawn(
        &db.url(),
        &["migrate", "run", "--migrations-dir", &dir],
        &[
            ("CONDUIT_MIGRATION_LOCK_TIMEOUT", "1s"),
            ("CONDUIT_MIGRATION_LOCK_RETRIES", "3"),
        ],
    );
    // A reader arriving while the ALTER waits queues behind it, for no
    // longer than the lock timeout.
    let mut watcher = db.connect().await;
    assert!(wait_for_a_lock_waiter(&mut watcher, || false).await);
    let mut reader = db.connect().await;
    let reading = Instant::now();
    select_texts(&mut reader, "SELECT count(*)::text AS value FROM things").await;
    let reader_waited = reading.elapsed();

    let status = migration.wait_exit(Duration::from_secs(120)).await.unwrap();
    let took = started.elapsed();
    holder.batch_execute("ROLLBACK").await.unwrap();

    let output = migration.output();
    eprintln!("{output}\nreader waited {reader_waited:?}; the migration gave up after {took:?}");
    assert!(!status.success());
    assert!(reader_waited < Duration::from_secs(4), "{reader_waited:?}");
    assert!(took > reader_waited * 2, "{took:?} vs {reader_waited:?}");
    let retries: Vec<serde_json::Value> = migration
        .log_events()
        .into_iter()
        .filter(|e| e["fields"]["attempts"] == 4 || e["attempts"] == 4)
        .collect();
    for k in 2..=4 {
        assert!(output.contains(&format!("attempt {k} of 4")), "{output}");
    }
    assert_eq!(retries.len(), 3, "{output}");
    let blocker = format!(
        "pid {pid} (application_name \"long-report\", client 127.0.0.1, state \"idle in transaction\""
    );
    assert!(output.contains(&blocker), "{output}");
    assert!(
        output.contains("query \"BEGIN; SELECT * FROM things\")"),
        "{output}"
    );
    assert!(
        output.contains("gave up after 4 attempts")
            && output.contains(&format!("last blocked by pid {pid}")),
        "{output}"
    );
    let mut conn = db.connect().await;
    let columns = select_texts(
        &mut conn,
        "SELECT column_name::text AS value FROM information_schema.columns WHERE table_name = 'things'",
    )
    .await;
    assert_eq!(columns, ["id"]);
}

#[tokio::test]
async fn a_migration_retried_after_its_blocker_ends_applies() {
    let db = TestDatabase::create().await;
    let (mut holder, _) = hold_things(&db).await;
    let dir = fixture("migrations_lock_timeout");
    let mut migration = ConduitProcess::spawn(
        &db.url(),
        &["migrate", "run", "--migrations-dir", &dir],
        &[
            ("CONDUIT_MIGRATION_LOCK_TIMEOUT", "500ms"),
            ("CONDUIT_MIGRATION_LOCK_RETRIES", "5"),
        ],
    );
    let retrying = migration
        .wait_for_event(
            |e| {
                e["fields"]["message"]
                    .as_str()
                    .or(e["message"].as_str())
                    .is_some_and(|m| m.contains("attempt 2 of 6"))
            },
            Duration::from_secs(60),
        )
        .await;
    assert!(retrying.is_some(), "{}", migration.output());
    holder.batch_execute("ROLLBACK").await.unwrap();

    let status = migration.wait_exit(Duration::from_secs(120)).await.unwrap();

    assert!(status.success(), "{}", migration.output());
    assert_eq!(applied_versions(&db).await, ["001"]);
}
