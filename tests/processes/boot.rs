//! Boot and the operator commands, with the real binary: waiting for the
//! database, migrate-on-start off, `migrate` subcommands, healthcheck,
//! shutdown, configuration errors.

use std::time::Duration;

use serde_json::json;

use crate::support::cluster::{at_port, forward_to_database, free_port};
use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;
use crate::support::process::{get_json, run_conduit, ConduitProcess, BOOT};

#[tokio::test]
async fn boot_waits_for_a_database_that_appears_a_few_seconds_later() {
    let db = TestDatabase::create().await;
    let port = free_port();
    let mut server = ConduitProcess::spawn(
        at_port(&db.url, port).as_str(),
        &[],
        &[("CONDUIT_DB_WAIT", "60")],
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(server.try_exit_status().is_none(), "{}", server.output());
    let _forwarder = forward_to_database(port).await;

    let address = server.wait_ready(BOOT).await.unwrap();
    let retries = server
        .log_events()
        .iter()
        .filter(|e| e["message"] == "database not reachable yet")
        .count();
    assert!(
        retries >= 2,
        "one log line per attempt:\n{}",
        server.output()
    );
    let (status, _) = get_json(&format!("http://{address}/ready")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn boot_gives_up_after_the_wait_naming_the_host_and_the_last_error() {
    let port = free_port();
    let url = format!("postgres://conduit:secret-password@127.0.0.1:{port}/conduit");
    let mut server = ConduitProcess::spawn(&url, &[], &[("CONDUIT_DB_WAIT", "2")]);

    let status = server.wait_exit(Duration::from_secs(30)).await.unwrap();

    assert!(!status.success());
    let output = server.output();
    assert!(
        output.contains(&format!(
            "could not connect to the database at 127.0.0.1:{port}/conduit within 2s"
        )),
        "{output}"
    );
    assert!(
        output.to_lowercase().contains("connection refused") || output.contains("error"),
        "{output}"
    );
    assert!(
        !output.contains("secret-password"),
        "the password leaked: {output}"
    );
}

#[tokio::test]
async fn a_missing_database_url_is_one_clear_sentence() {
    let (status, output) = run_conduit(None, &["serve"], &[]).await;

    assert!(!status.success());
    assert!(output.contains("DATABASE_URL is not set"), "{output}");
}

#[tokio::test]
async fn without_migrate_on_start_the_server_starts_and_ready_names_pending_migrations() {
    let db = TestDatabase::create().await;
    let mut server =
        ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_MIGRATE_ON_START", "false")]);
    let address = server.wait_for_address(BOOT).await.unwrap();
    let ready = format!("http://{address}/ready");

    let (status, body) = get_json(&ready).await;
    assert_eq!(status, 503);
    assert_eq!(body["pending_migrations"], json!(embedded::versions()));
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("001, 002, 003, 004, 005"),
        "{body}"
    );
    let (check, listing) =
        run_conduit(Some(&db.url()), &["migrate", "status", "--check"], &[]).await;
    assert!(
        !check.success(),
        "status --check fails while migrations are pending"
    );
    assert!(listing.contains("pending  001_initial_schema"), "{listing}");

    let (run, output) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(run.success(), "{output}");

    let (status, body) = get_json(&ready).await;
    assert_eq!(status, 200);
    assert_eq!(body["schema_version"], embedded::newest());
    let (check, listing) =
        run_conduit(Some(&db.url()), &["migrate", "status", "--check"], &[]).await;
    assert!(check.success(), "{listing}");
    assert!(listing.contains("applied  003_article_count"), "{listing}");
}

#[tokio::test]
async fn migrate_revert_and_redo_move_the_newest_migration() {
    let db = TestDatabase::create().await;
    let (run, output) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(run.success(), "{output}");
    let mut conn = db.connect().await;
    let demo_users = "SELECT count(*)::text AS value FROM users WHERE username = 'demo'";
    let counter_tables =
        "SELECT count(*)::text AS value FROM pg_tables WHERE tablename = 'article_count_shards'";

    for newer in [
        "012_user_identity_keys",
        "011_seeded_demo_account",
        "010_tag_link_counts",
        "009_article_tags_tag_created_at_index",
        "008_backfill_article_tags_created_at",
        "007_article_tags_created_at",
        "006_login_throttle",
        "005_username_unique_any_case",
        "004_recount_articles",
    ] {
        let (revert, output) = run_conduit(Some(&db.url()), &["migrate", "revert"], &[]).await;
        assert!(revert.success(), "{output}");
        assert!(
            output.contains(&format!("reverted migration {newer}")),
            "{output}"
        );
    }
    let (revert, output) = run_conduit(Some(&db.url()), &["migrate", "revert"], &[]).await;
    assert!(revert.success(), "{output}");
    assert!(
        output.contains("reverted migration 003_article_count"),
        "{output}"
    );
    assert_eq!(select_texts(&mut conn, counter_tables).await, ["0"]);

    let (redo, output) = run_conduit(Some(&db.url()), &["migrate", "redo"], &[]).await;
    assert!(redo.success(), "{output}");
    assert!(
        output.contains("reverted migration 002_seed_demo_user"),
        "{output}"
    );
    assert!(
        output.contains("applied migration 002_seed_demo_user"),
        "{output}"
    );
    assert_eq!(select_texts(&mut conn, demo_users).await, ["1"]);

    let (run, _) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(run.success());
    assert_eq!(select_texts(&mut conn, counter_tables).await, ["1"]);
}

#[tokio::test]
async fn healthcheck_exits_zero_when_ready_and_one_when_nothing_answers() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();

    let listen = address.to_string();
    let (up, output) = run_conduit(None, &["healthcheck"], &[("CONDUIT_LISTEN", &listen)]).await;
    assert!(up.success(), "{output}");

    let closed = format!("127.0.0.1:{}", free_port());
    let (down, _) = run_conduit(None, &["healthcheck"], &[("CONDUIT_LISTEN", &closed)]).await;
    assert!(!down.success());
}

#[tokio::test]
async fn sigterm_stops_the_server_and_exits_zero() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();

    server.signal("TERM");

    let status = server.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert!(status.success(), "{}", server.output());
    assert!(reqwest::get(format!("http://{address}/health"))
        .await
        .is_err());
    assert!(server
        .log_events()
        .iter()
        .any(|e| e["message"] == "stopped"));
}

#[tokio::test]
async fn a_production_boot_warns_while_the_demo_account_exists() {
    let db = TestDatabase::create().await;
    assert_production_boot_warns_of_the_demo_account(&db).await;
}

/// Boots a production server on `db` and expects its warning that the
/// demo account exists and its login is refused.
pub async fn assert_production_boot_warns_of_the_demo_account(db: &TestDatabase) {
    let mut production = ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_ENV", "production")]);
    production.wait_ready(BOOT).await.unwrap();

    let warning = production
        .wait_for_event(
            |e| {
                e["level"] == "WARN"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("demo account"))
            },
            Duration::from_secs(10),
        )
        .await;

    let warning = warning.unwrap_or_else(|| panic!("no warning:\n{}", production.output()));
    assert!(warning["message"]
        .as_str()
        .unwrap()
        .contains("refused in production"));
}
