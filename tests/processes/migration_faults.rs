//! Migrations meeting faults for real: a long transaction in the way,
//! another replica holding the migration lock, the schema and the binary
//! disagreeing.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use crate::support::database::{connect, select_texts, TestDatabase};
use crate::support::process::{fixture, run_conduit, ConduitProcess, BOOT};

#[tokio::test]
async fn a_migration_stuck_behind_a_long_transaction_fails_with_a_clear_message() {
    let db = TestDatabase::create().await;
    let mut holder = db.connect().await;
    holder
        .batch_execute("CREATE TABLE things (id INT)")
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; SELECT * FROM things")
        .await
        .unwrap();
    let dir = fixture("migrations_lock_timeout");

    let (status, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "run", "--migrations-dir", &dir],
        &[
            ("CONDUIT_MIGRATION_LOCK_TIMEOUT", "1s"),
            ("CONDUIT_MIGRATION_LOCK_RETRIES", "0"),
        ],
    )
    .await;
    holder.batch_execute("ROLLBACK").await.unwrap();

    assert!(!status.success());
    assert!(
        output.contains("migration 001_add_note_to_things failed"),
        "{output}"
    );
    assert!(output.contains("lock timeout"), "{output}");
    let mut conn = db.connect().await;
    let columns = select_texts(
        &mut conn,
        "SELECT column_name::text AS value FROM information_schema.columns WHERE table_name = 'things'",
    )
    .await;
    assert_eq!(columns, ["id"], "nothing of the migration was applied");
}

#[tokio::test]
async fn waiting_for_another_replicas_migration_lock_is_bounded_and_names_the_holder() {
    let db = TestDatabase::create().await;
    let mut holder_url = db.url.clone();
    holder_url
        .query_pairs_mut()
        .append_pair("application_name", "release-job");
    let mut holder = connect(&holder_url).await;
    let pid = select_texts(&mut holder, "SELECT pg_backend_pid()::text AS value")
        .await
        .remove(0);
    select_texts(
        &mut holder,
        "SELECT pg_advisory_lock(hashtextextended('conduit:migrations:' || current_database(), 0))::text AS value",
    )
    .await;

    let mut server = ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_MIGRATION_LOCK_WAIT", "2")]);
    let status = server.wait_exit(Duration::from_secs(60)).await.unwrap();

    assert!(!status.success());
    let waiting = server
        .log_events()
        .into_iter()
        .find(|e| e["message"] == "waiting for the migration lock held by another process")
        .unwrap_or_else(|| panic!("no waiting line:\n{}", server.output()));
    assert_eq!(waiting["holder_pid"].to_string(), pid);
    assert_eq!(waiting["holder_application"], "release-job");
    assert!(
        server.output().contains(&format!(
            "gave up after 2s waiting for the migration lock (held by pid {pid}, \"release-job\")"
        )),
        "{}",
        server.output()
    );
}

#[tokio::test]
async fn migrations_from_a_newer_binary_are_reported_and_refused_when_strict() {
    let db = TestDatabase::create().await;
    let (run, _) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(run.success());
    let mut conn = db.connect().await;
    select_texts(&mut conn, "INSERT INTO __diesel_schema_migrations (version) VALUES ('999') RETURNING version AS value").await;

    let mut lenient = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = lenient.wait_ready(BOOT).await.unwrap();
    let (_, ready) = crate::support::process::get_json(&format!("http://{address}/ready")).await;
    let (_, status) = run_conduit(Some(&db.url()), &["migrate", "status"], &[]).await;
    let (strict, output) = run_conduit(
        Some(&db.url()),
        &["serve"],
        &[("CONDUIT_STRICT_SCHEMA", "true")],
    )
    .await;

    assert!(
        lenient
            .output()
            .contains("migrations this binary does not know: 999"),
        "{}",
        lenient.output()
    );
    assert_eq!(ready["unknown_migrations"], json!(["999"]));
    assert!(status.contains("unknown  999"), "{status}");
    assert!(!strict.success());
    assert!(
        output.contains("does not know: 999") && output.contains("CONDUIT_STRICT_SCHEMA"),
        "{output}"
    );
}

#[tokio::test]
async fn an_applied_migration_edited_afterwards_is_detected() {
    let db = TestDatabase::create().await;
    let dir = std::env::temp_dir().join(format!(
        "conduit-migrations-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let migration = dir.join("001_create_gadgets");
    std::fs::create_dir_all(&migration).unwrap();
    std::fs::write(migration.join("up.sql"), "CREATE TABLE gadgets (id INT);\n").unwrap();
    std::fs::write(migration.join("down.sql"), "DROP TABLE gadgets;\n").unwrap();
    let dir_arg = dir.to_string_lossy().into_owned();
    let (run, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "run", "--migrations-dir", &dir_arg],
        &[],
    )
    .await;
    assert!(run.success(), "{output}");

    std::fs::write(
        migration.join("up.sql"),
        "CREATE TABLE gadgets (id BIGINT);\n",
    )
    .unwrap();
    let (_, status) = run_conduit(
        Some(&db.url()),
        &["migrate", "status", "--migrations-dir", &dir_arg],
        &[],
    )
    .await;
    let mut lenient =
        ConduitProcess::spawn(&db.url(), &["serve", "--migrations-dir", &dir_arg], &[]);
    lenient.wait_ready(BOOT).await.unwrap();
    let (strict, output) = run_conduit(
        Some(&db.url()),
        &["serve", "--migrations-dir", &dir_arg],
        &[("CONDUIT_STRICT_SCHEMA", "true")],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);

    assert!(status.contains("modified 001"), "{status}");
    assert!(
        lenient.output().contains("changed since they ran: 001"),
        "{}",
        lenient.output()
    );
    assert!(!strict.success());
    assert!(output.contains("changed since they ran: 001"), "{output}");
}
