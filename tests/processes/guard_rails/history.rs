//! The applied history guarded: an applied migration edited afterwards is
//! refused until repaired, one merged below the newest applied until
//! allowed, and two of one version always.

use serde_json::json;

use crate::guard_rails::{applied_versions, migrate, tables, ScratchMigrations};
use crate::support::database::{select_texts, TestDatabase};
use crate::support::http::metrics;
use crate::support::process::{fixture, get_json, run_conduit, ConduitProcess, BOOT};

// ---- 7. Strict mode everywhere ----

#[tokio::test]
async fn strict_migrate_run_refuses_an_edited_applied_migration_before_applying_the_next() {
    let db = TestDatabase::create().await;
    let set = ScratchMigrations::new();
    set.write("001_create_gadgets", "CREATE TABLE gadgets (id INT);\n");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &set.path()], &[]).await;
    assert!(ran, "{output}");
    set.write("001_create_gadgets", "CREATE TABLE gadgets (id BIGINT);\n");
    set.write("002_create_parts", "CREATE TABLE parts (id INT);\n");

    let (ran, output) = migrate(
        &db,
        &["run", "--migrations-dir", &set.path()],
        &[("CONDUIT_STRICT_SCHEMA", "true")],
    )
    .await;

    eprintln!("{output}");
    assert!(!ran, "{output}");
    assert!(
        output.contains("applied migrations whose up.sql changed since they ran: 001")
            && output.contains("(CONDUIT_STRICT_SCHEMA is on)"),
        "{output}"
    );
    assert_eq!(applied_versions(&db).await, ["001"], "nothing was applied");
    assert_eq!(tables(&db).await, ["gadgets"]);
}

// ---- 6. Repair ----

#[tokio::test]
async fn repair_records_the_new_checksums_and_strict_mode_passes_afterwards() {
    let db = TestDatabase::create().await;
    let set = ScratchMigrations::new();
    set.write("001_create_gadgets", "CREATE TABLE gadgets (id INT);\n");
    set.write("002_create_parts", "CREATE TABLE parts (id INT);\n");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &set.path()], &[]).await;
    assert!(ran, "{output}");
    let mut conn = db.connect().await;
    let before = select_texts(
        &mut conn,
        "SELECT up_sql_sha256 AS value FROM __conduit_migration_checksums WHERE version = '001'",
    )
    .await;
    set.write(
        "001_create_gadgets",
        "-- gadgets, as the first release made them\nCREATE TABLE gadgets (id INT);\n",
    );
    set.write("003_create_tools", "CREATE TABLE tools (id INT);\n");

    let (repaired, output) = migrate(&db, &["repair", "--migrations-dir", &set.path()], &[]).await;

    eprintln!("{output}");
    assert!(repaired, "{output}");
    let after = select_texts(
        &mut conn,
        "SELECT up_sql_sha256 AS value FROM __conduit_migration_checksums WHERE version = '001'",
    )
    .await;
    assert_ne!(before, after);
    assert!(
        output.contains(&format!(
            "repaired 001: checksum {} -> {}",
            before[0], after[0]
        )),
        "{output}"
    );
    assert!(!output.contains("repaired 002"), "{output}");
    let (ran, output) = migrate(
        &db,
        &["run", "--migrations-dir", &set.path()],
        &[("CONDUIT_STRICT_SCHEMA", "true")],
    )
    .await;
    assert!(ran, "strict mode passes after the repair: {output}");
    assert_eq!(applied_versions(&db).await, ["001", "002", "003"]);
    let (_, output) = migrate(&db, &["repair", "--migrations-dir", &set.path()], &[]).await;
    assert!(output.contains("nothing to repair"), "{output}");
}

// ---- 1. Out of order ----

#[tokio::test]
async fn a_migration_merged_below_the_newest_applied_is_refused_until_allowed() {
    let db = TestDatabase::create().await;
    let before = fixture("migrations_out_of_order/before");
    let after = fixture("migrations_out_of_order/after");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &before], &[]).await;
    assert!(ran, "{output}");

    let (ran, refused) = migrate(&db, &["run", "--migrations-dir", &after], &[]).await;
    let (booted, boot_output) =
        run_conduit(Some(&db.url()), &["serve", "--migrations-dir", &after], &[]).await;
    let (_, status) = migrate(&db, &["status", "--migrations-dir", &after], &[]).await;
    let mut looking = ConduitProcess::spawn(
        &db.url(),
        &["serve", "--migrations-dir", &after],
        &[("CONDUIT_MIGRATE_ON_START", "false")],
    );
    let address = looking.wait_for_address(BOOT).await.unwrap();
    let (ready_status, ready) = get_json(&format!("http://{address}/ready")).await;
    let scraped = metrics(&reqwest::Client::new(), &format!("http://{address}")).await;
    drop(looking);

    eprintln!("{refused}\n{status}");
    let line = "refusing to migrate: 002_create_beta sorts below 003, the newest applied migration";
    assert!(!ran && refused.contains(line), "{refused}");
    assert!(refused.contains("--allow-out-of-order"), "{refused}");
    assert!(
        refused.contains("CONDUIT_MIGRATION_ALLOW_OUT_OF_ORDER=true"),
        "{refused}"
    );
    assert!(
        !booted.success() && boot_output.contains(line),
        "{boot_output}"
    );
    assert!(status.contains("out of order 002_create_beta"), "{status}");
    assert_eq!(ready_status, 503);
    assert_eq!(ready["pending_migrations"], json!(["002"]));
    assert!(
        scraped.contains("conduit_migrations_out_of_order 1"),
        "{scraped}"
    );
    assert_eq!(
        applied_versions(&db).await,
        ["001", "003"],
        "nothing applied"
    );

    let (ran, output) = migrate(
        &db,
        &["run", "--allow-out-of-order", "--migrations-dir", &after],
        &[],
    )
    .await;
    assert!(ran, "{output}");
    assert_eq!(applied_versions(&db).await, ["001", "002", "003"]);
}

#[tokio::test]
async fn a_boot_allowed_by_the_environment_applies_out_of_order_migrations() {
    let db = TestDatabase::create().await;
    let before = fixture("migrations_out_of_order/before");
    let after = fixture("migrations_out_of_order/after");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &before], &[]).await;
    assert!(ran, "{output}");

    let mut server = ConduitProcess::spawn(
        &db.url(),
        &["serve", "--migrations-dir", &after],
        &[("CONDUIT_MIGRATION_ALLOW_OUT_OF_ORDER", "true")],
    );
    let address = server.wait_ready(BOOT).await.unwrap();

    let scraped = metrics(&reqwest::Client::new(), &format!("http://{address}")).await;
    assert_eq!(applied_versions(&db).await, ["001", "002", "003"]);
    assert!(
        scraped.contains("conduit_migrations_out_of_order 0"),
        "{scraped}"
    );
    assert_eq!(tables(&db).await, ["alpha", "beta", "gamma"]);
}

#[tokio::test]
async fn two_migrations_with_one_version_are_refused_naming_both() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_shared_version");

    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;

    eprintln!("{output}");
    assert!(!ran);
    assert!(
        output
            .contains("migrations 001_create_alpha and 001_create_beta have the same version 001"),
        "{output}"
    );
    assert!(tables(&db).await.is_empty(), "nothing applied");
}
