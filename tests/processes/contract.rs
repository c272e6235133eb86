//! Release names on connections and contract migrations: every connection
//! of a process carries `application_name` `conduit@<newest migration it
//! knows>`, and a migration marked `-- conduit:contract` waits for older
//! releases to disconnect (boot and `migrate run`), then refuses, naming
//! them.

use std::time::Duration;

use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;
use crate::support::process::{fixture, run_conduit, ConduitProcess, BOOT};

async fn application_names(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT application_name AS value FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY 1",
    )
    .await
}

async fn columns_of_notes(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT column_name::text AS value FROM information_schema.columns \
         WHERE table_name = 'notes' ORDER BY ordinal_position",
    )
    .await
}

/// A server of release 1 (`conduit@001`), serving.
async fn older_release(db: &TestDatabase) -> ConduitProcess {
    let release1 = fixture("contract_release1");
    let mut server =
        ConduitProcess::spawn(&db.url(), &["serve", "--migrations-dir", &release1], &[]);
    server.wait_ready(BOOT).await.unwrap();
    server
}

#[tokio::test]
async fn every_connection_names_the_release_by_its_newest_embedded_migration() {
    let db = TestDatabase::create().await;
    let newest = embedded::newest();
    // A name in the URL gives way: contract migrations rely on ours.
    let mut url = db.url.clone();
    url.query_pairs_mut()
        .append_pair("application_name", "custom");
    let mut server = ConduitProcess::spawn(url.as_str(), &["serve"], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let (status, _) =
        crate::support::process::get_json(&format!("http://{address}/api/articles")).await;
    assert_eq!(status, 200);

    let names = application_names(&db).await;

    assert!(!names.is_empty(), "the pool holds a connection");
    assert!(
        names.iter().all(|n| *n == format!("conduit@{newest}")),
        "{names:?}"
    );
    server.signal("TERM");
    server.wait_exit(BOOT).await.unwrap();
}

#[tokio::test]
async fn the_migration_connection_names_the_release_of_its_migrations_dir() {
    let db = TestDatabase::create().await;
    let release2 = fixture("contract_release2");
    let mut server =
        ConduitProcess::spawn(&db.url(), &["serve", "--migrations-dir", &release2], &[]);
    server.wait_ready(BOOT).await.unwrap();

    let names = application_names(&db).await;

    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n == "conduit@002"), "{names:?}");
    server.signal("TERM");
    server.wait_exit(BOOT).await.unwrap();
}

#[tokio::test]
async fn a_booting_server_refuses_a_contract_migration_while_an_older_release_is_connected() {
    let db = TestDatabase::create().await;
    let old = older_release(&db).await;
    let release2 = fixture("contract_release2");

    let mut new = ConduitProcess::spawn(
        &db.url(),
        &["serve", "--migrations-dir", &release2],
        &[("CONDUIT_MIGRATION_LOCK_WAIT", "2")],
    );
    let status = new.wait_exit(BOOT).await.unwrap();

    assert!(!status.success());
    let output = new.output();
    assert!(
        output.contains("contract migration 002_drop_notes_legacy not applied: after 2s older releases are still connected (pid "),
        "{output}"
    );
    assert!(output.contains(" conduit@001 from 127.0.0.1"), "{output}");
    assert!(
        new.log_events().iter().any(|e| e["message"]
            == "contract migration 002_drop_notes_legacy waits for older releases to disconnect"),
        "{output}"
    );
    assert_eq!(columns_of_notes(&db).await, ["id", "body", "legacy"]);
    old.signal("TERM");
}

#[tokio::test]
async fn migrate_run_applies_a_contract_migration_once_the_older_release_has_gone() {
    let db = TestDatabase::create().await;
    let mut old = older_release(&db).await;
    let release2 = fixture("contract_release2");
    let mut run = ConduitProcess::spawn(
        &db.url(),
        &["migrate", "run", "--migrations-dir", &release2],
        &[("CONDUIT_MIGRATION_LOCK_WAIT", "120")],
    );
    let waiting = run
        .wait_for_event(
            |e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("waits for older releases"))
            },
            BOOT,
        )
        .await;
    assert!(waiting.is_some(), "{}", run.output());
    assert_eq!(
        columns_of_notes(&db).await,
        ["id", "body", "legacy"],
        "not applied while it waits"
    );

    old.signal("TERM");
    assert!(old.wait_exit(BOOT).await.unwrap().success());
    let status = run.wait_exit(BOOT).await.unwrap();

    assert!(status.success(), "{}", run.output());
    assert_eq!(columns_of_notes(&db).await, ["id", "body"]);
}

#[tokio::test]
async fn a_migration_without_the_marker_does_not_wait_for_older_releases() {
    let db = TestDatabase::create().await;
    let release1 = fixture("contract_release1");
    // Someone of an older release is connected; release 1's only migration
    // is no contract step.
    let mut url = db.url.clone();
    url.query_pairs_mut()
        .append_pair("application_name", "conduit@000");
    let _older = crate::support::database::connect(&url).await;

    let (status, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "run", "--migrations-dir", &release1],
        &[("CONDUIT_MIGRATION_LOCK_WAIT", "0")],
    )
    .await;

    assert!(status.success(), "{output}");
    assert_eq!(columns_of_notes(&db).await, ["id", "body", "legacy"]);
}

/// A connection that names itself as a server of `release` would.
async fn connected_as(db: &TestDatabase, release: &str) -> diesel_async::AsyncPgConnection {
    let mut url = db.url.clone();
    url.query_pairs_mut()
        .append_pair("application_name", &format!("conduit@{release}"));
    crate::support::database::connect(&url).await
}

async fn migrated_to_release2(db: &TestDatabase) -> String {
    let release2 = fixture("contract_release2");
    let (status, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "run", "--migrations-dir", &release2],
        &[],
    )
    .await;
    assert!(status.success(), "{output}");
    assert_eq!(columns_of_notes(db).await, ["id", "body"]);
    release2
}

#[tokio::test]
async fn migrate_revert_refuses_while_a_release_that_uses_the_migration_is_connected() {
    let db = TestDatabase::create().await;
    let release2 = migrated_to_release2(&db).await;
    let _serving = connected_as(&db, "002").await;

    for action in ["revert", "redo"] {
        let (status, output) = run_conduit(
            Some(&db.url()),
            &["migrate", action, "--migrations-dir", &release2],
            &[("CONDUIT_MIGRATION_LOCK_WAIT", "1")],
        )
        .await;

        assert!(!status.success(), "{action}: {output}");
        assert!(
            output.contains("migration 002_drop_notes_legacy not reverted: after 1s releases that use it are still connected (pid "),
            "{action}: {output}"
        );
        assert!(output.contains(" conduit@002 from "), "{action}: {output}");
        assert_eq!(columns_of_notes(&db).await, ["id", "body"], "{action}");
    }
}

#[tokio::test]
async fn migrate_revert_goes_ahead_with_only_older_releases_connected() {
    let db = TestDatabase::create().await;
    let release2 = migrated_to_release2(&db).await;
    let _rolled_back = connected_as(&db, "001").await;

    let (status, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "revert", "--migrations-dir", &release2],
        &[("CONDUIT_MIGRATION_LOCK_WAIT", "1")],
    )
    .await;

    assert!(status.success(), "{output}");
    assert_eq!(columns_of_notes(&db).await, ["id", "body", "legacy"]);
}

#[tokio::test]
async fn migrate_revert_sees_a_serving_release_whose_connections_were_all_cut() {
    // As after a restart of PostgreSQL: the server's pool holds nothing,
    // yet it serves release 2 and would answer 500 on release 1's schema.
    let db = TestDatabase::create().await;
    let release2 = migrated_to_release2(&db).await;
    let mut server =
        ConduitProcess::spawn(&db.url(), &["serve", "--migrations-dir", &release2], &[]);
    server.wait_ready(BOOT).await.unwrap();
    // Past the boot's own later work (the drift check, the first purge),
    // which would open a connection again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut admin = db.connect().await;
    let cut = select_texts(
        &mut admin,
        "SELECT pg_terminate_backend(pid)::text AS value FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'conduit@%'",
    )
    .await;
    assert!(!cut.is_empty());

    let (status, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "revert", "--migrations-dir", &release2],
        &[("CONDUIT_MIGRATION_LOCK_WAIT", "1")],
    )
    .await;

    assert!(!status.success(), "{output}");
    assert!(output.contains("not reverted"), "{output}");
    assert_eq!(columns_of_notes(&db).await, ["id", "body"]);
    server.signal("TERM");
    server.wait_exit(BOOT).await.unwrap();
}
