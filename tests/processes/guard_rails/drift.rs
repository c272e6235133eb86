//! Drift between the live schema and the migrations: `migrate verify`,
//! strict boots, and `migrate baseline` on a schema made without history.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;

use crate::guard_rails::{applied_versions, migrate};
use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;
use crate::support::http::metrics;
use crate::support::process::{fixture, run_conduit, ConduitProcess, BOOT};

// ---- 4. Drift ----

const DRIFT: &str = "ALTER TABLE users ALTER COLUMN bio TYPE varchar(200); \
                     CREATE INDEX users_bio_idx ON users (bio); \
                     DROP INDEX articles_created_at_id_idx";

#[tokio::test]
async fn verify_and_boot_report_each_difference_and_strict_boots_refuse() {
    let db = TestDatabase::create().await;
    let (ran, output) = migrate(&db, &["run"], &[]).await;
    assert!(ran, "{output}");
    let (clean, clean_output) = migrate(&db, &["verify"], &[]).await;
    let mut up_to_date = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = up_to_date.wait_ready(BOOT).await.unwrap();
    let client = reqwest::Client::new();
    let mut clean_metrics = String::new();
    for _ in 0..100 {
        clean_metrics = metrics(&client, &format!("http://{address}")).await;
        if !clean_metrics.contains("conduit_schema_drift -1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(up_to_date);
    db.connect().await.batch_execute(DRIFT).await.unwrap();

    let (verified, verify_output) = migrate(&db, &["verify"], &[]).await;
    let mut lenient = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = lenient.wait_ready(BOOT).await.unwrap();
    let warned = lenient
        .wait_for_event(
            |e| e["fields"]["message"].as_str().or(e["message"].as_str()) == Some("schema drift: added index public.users_bio_idx: CREATE INDEX users_bio_idx ON public.users USING btree (bio) (no migration makes it)"),
            Duration::from_secs(30),
        )
        .await;
    let drift_metrics = metrics(&client, &format!("http://{address}")).await;
    let (strict, strict_output) =
        run_conduit(Some(&db.url()), &[], &[("CONDUIT_STRICT_SCHEMA", "true")]).await;

    eprintln!("{verify_output}\n{strict_output}");
    assert!(clean, "{clean_output}");
    assert!(clean_output.contains("no drift"), "{clean_output}");
    assert!(
        clean_metrics.contains("conduit_schema_drift 0"),
        "{clean_metrics}"
    );
    assert!(!verified);
    let lines: Vec<&str> = verify_output
        .lines()
        .filter(|l| {
            l.starts_with("added ") || l.starts_with("missing ") || l.starts_with("changed ")
        })
        .collect();
    assert_eq!(
        lines,
        [
            "changed column public.users.bio: the migrations make `text NULL`, the database has `character varying(200) NULL`",
            "missing index public.articles_created_at_id_idx: CREATE INDEX articles_created_at_id_idx ON public.articles USING btree (created_at DESC, id DESC) (a migration makes it)",
            "added index public.users_bio_idx: CREATE INDEX users_bio_idx ON public.users USING btree (bio) (no migration makes it)",
        ]
    );
    assert!(warned.is_some(), "{}", lenient.output());
    let boot_lines = lenient
        .log_events()
        .iter()
        .filter(|e| {
            e["fields"]["message"]
                .as_str()
                .or(e["message"].as_str())
                .is_some_and(|m| m.starts_with("schema drift: "))
        })
        .count();
    assert_eq!(boot_lines, 3, "{}", lenient.output());
    assert!(
        drift_metrics.contains("conduit_schema_drift 3"),
        "{drift_metrics}"
    );
    assert!(!strict.success());
    assert!(
        strict_output.contains(
            "the live schema differs from what the applied migrations make in 3 place(s)"
        ) && strict_output.contains("CONDUIT_STRICT_SCHEMA is on"),
        "{strict_output}"
    );
}

#[tokio::test]
async fn verify_of_a_migrations_dir_compares_with_a_scratch_database() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_concurrent_index");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;
    assert!(ran, "{output}");
    let (clean, clean_output) = migrate(&db, &["verify", "--migrations-dir", &dir], &[]).await;
    db.connect()
        .await
        .batch_execute("DROP INDEX widgets_name_idx")
        .await
        .unwrap();

    let (verified, output) = migrate(&db, &["verify", "--migrations-dir", &dir], &[]).await;

    eprintln!("{output}");
    assert!(clean, "{clean_output}");
    assert!(!verified);
    assert!(
        output.contains("missing index public.widgets_name_idx: CREATE INDEX widgets_name_idx ON public.widgets USING btree (name) (a migration makes it)"),
        "{output}"
    );
    let mut conn = db.connect().await;
    let scratch = select_texts(
        &mut conn,
        "SELECT datname::text AS value FROM pg_database WHERE datname LIKE 'conduit\\_verify\\_%'",
    )
    .await;
    assert!(scratch.is_empty(), "scratch databases left: {scratch:?}");
}

// ---- 5. Baseline ----

/// The embedded schema, without any migration history.
async fn schema_without_history(db: &TestDatabase) {
    let (ran, output) = migrate(db, &["run"], &[]).await;
    assert!(ran, "{output}");
    db.connect()
        .await
        .batch_execute("DROP TABLE __diesel_schema_migrations, __conduit_migration_checksums")
        .await
        .unwrap();
}

#[tokio::test]
async fn baseline_records_matching_migrations_without_running_them_once() {
    let db = TestDatabase::create().await;
    schema_without_history(&db).await;
    let mut conn = db.connect().await;
    conn.batch_execute("DELETE FROM users WHERE username = 'demo'")
        .await
        .unwrap();

    let newest = embedded::newest();
    let (baselined, output) = migrate(&db, &["baseline", &newest], &[]).await;

    eprintln!("{output}");
    assert!(baselined, "{output}");
    assert!(
        output.contains("recorded 001_initial_schema as applied (not run)"),
        "{output}"
    );
    assert!(
        output.contains(&format!("baselined at {newest}")),
        "{output}"
    );
    assert_eq!(applied_versions(&db).await, embedded::versions());
    let demo = "SELECT count(*)::text AS value FROM users WHERE username = 'demo'";
    assert_eq!(select_texts(&mut conn, demo).await, ["0"], "nothing ran");
    let (strict, output) = migrate(&db, &["run"], &[("CONDUIT_STRICT_SCHEMA", "true")]).await;
    assert!(strict, "checksums were recorded: {output}");
    let (again, output) = migrate(&db, &["baseline", &newest], &[]).await;
    assert!(!again);
    assert!(
        output.contains("refusing to baseline: the database already has a migration history"),
        "{output}"
    );
}

#[tokio::test]
async fn baseline_refuses_a_schema_that_differs_and_records_nothing() {
    let db = TestDatabase::create().await;
    schema_without_history(&db).await;
    db.connect().await.batch_execute(DRIFT).await.unwrap();

    let newest = embedded::newest();
    let (baselined, output) = migrate(&db, &["baseline", &newest], &[]).await;

    eprintln!("{output}");
    assert!(!baselined);
    assert!(
        output.contains("changed column public.users.bio: the migrations make `text NULL`"),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "refusing to baseline at {newest}: the live schema differs from what the migrations up to {newest} make in 3 place(s)"
        )),
        "{output}"
    );
    let mut conn = db.connect().await;
    let history = select_texts(
        &mut conn,
        "SELECT (to_regclass('__diesel_schema_migrations') IS NULL)::text AS value",
    )
    .await;
    assert_eq!(history, ["true"], "no history was created");
}

#[tokio::test]
async fn baseline_at_an_older_version_then_run_applies_the_rest() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_concurrent_index");
    db.connect()
        .await
        .batch_execute(
            "CREATE TABLE widgets (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL)",
        )
        .await
        .unwrap();

    let (baselined, output) =
        migrate(&db, &["baseline", "001", "--migrations-dir", &dir], &[]).await;
    assert!(baselined, "{output}");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;

    assert!(ran, "{output}");
    assert_eq!(applied_versions(&db).await, ["001", "002"]);
    let mut conn = db.connect().await;
    let rows = select_texts(&mut conn, "SELECT count(*)::text AS value FROM widgets").await;
    assert_eq!(rows, ["0"], "001 did not run");
}
