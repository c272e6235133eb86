//! `conduit migrate plan` against real databases: what it measures on its
//! scratch database, what it reads from the live one, and that the
//! scratch database is gone after success, an error and SIGINT.

use std::time::Duration;

use serde_json::Value;

use crate::support::database::{connect, select_texts, server_url, with_database, TestDatabase};
use crate::support::process::{base_command, fixture, run_conduit, ConduitProcess};

/// A live database at the fixture's first migration, `items` holding
/// 1000 analyzed rows.
async fn live_at_first_migration(set: &str) -> TestDatabase {
    let db = TestDatabase::create().await;
    let first =
        std::env::temp_dir().join(format!("conduit-plan-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(first.join("001_create_items")).unwrap();
    for file in ["up.sql", "down.sql"] {
        std::fs::copy(
            format!("{}/001_create_items/{file}", fixture(set)),
            first.join("001_create_items").join(file),
        )
        .unwrap();
    }
    let dir = first.to_string_lossy().into_owned();
    migrate_run(&db, &dir).await;
    std::fs::remove_dir_all(&first).unwrap();
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "WITH i AS (INSERT INTO items (name, price) SELECT 'item ' || g, g \
         FROM generate_series(1, 1000) g RETURNING 1) SELECT count(*)::text AS value FROM i",
    )
    .await;
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, "ANALYZE items")
        .await
        .unwrap();
    db
}

/// Applies the migrations of `dir` to `db` with `migrate run`.
async fn migrate_run(db: &TestDatabase, dir: &str) {
    let (status, output) = run_conduit(
        Some(&db.url()),
        &["migrate", "run", "--migrations-dir", dir],
        &[],
    )
    .await;
    assert!(status.success(), "{output}");
}

/// Runs `migrate plan` on `db` with `set`; returns the exit code, stdout
/// and stderr apart (stdout is the plan).
fn plan(db: &TestDatabase, set: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = fixture(set);
    let output = base_command(Some(&db.url()))
        .env("RUST_LOG", "warn")
        .args(["migrate", "plan", "--migrations-dir", &dir])
        .args(extra)
        .output()
        .expect("run conduit migrate plan");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_plan(db: &TestDatabase, set: &str) -> Value {
    let (code, stdout, stderr) = plan(db, set, &["--format", "json"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The scratch database's name, from the line plan prints when it starts.
fn scratch_name(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.split("on the scratch database ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no scratch database line: {stderr}"))
        .to_owned()
}

async fn database_exists(name: &str) -> bool {
    let mut admin = connect(&server_url()).await;
    select_texts(
        &mut admin,
        &format!("SELECT count(*)::text AS value FROM pg_database WHERE datname = '{name}'"),
    )
    .await
        == ["1"]
}

fn statement<'a>(plan: &'a Value, migration: &str) -> &'a Value {
    let found = plan["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == migration)
        .unwrap_or_else(|| panic!("no {migration} in {plan:#}"));
    &found["statements"][0]
}

fn has_lock(statement: &Value, relation: &str, mode: &str) -> bool {
    statement["locks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == relation && l["mode"] == mode)
}

fn risk_kinds(statement: &Value) -> Vec<String> {
    statement["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn plan_measures_locks_rewrites_and_scans_and_names_the_safe_alternative() {
    let db = live_at_first_migration("plan_risky").await;

    let plan = json_plan(&db, "plan_risky");

    assert_eq!(plan["schema_version"], "001");
    assert_eq!(plan["risky"], true);
    let volatile = statement(&plan, "002_add_volatile_default");
    assert!(
        has_lock(volatile, "items", "AccessExclusiveLock"),
        "{volatile:#}"
    );
    assert_eq!(volatile["rewrites"], serde_json::json!(["items"]));
    assert_eq!(risk_kinds(volatile), ["rewrite"]);
    assert!(volatile["risks"][0]["safe_alternative"]
        .as_str()
        .unwrap()
        .contains("backfill it in batches"));
    let index = statement(&plan, "003_plain_index");
    assert!(has_lock(index, "items", "ShareLock"), "{index:#}");
    assert_eq!(index["rewrites"], serde_json::json!([]));
    assert_eq!(risk_kinds(index), ["blocking_index_build"]);
    assert!(index["risks"][0]["safe_alternative"]
        .as_str()
        .unwrap()
        .contains("CONCURRENTLY"));
    let check = statement(&plan, "004_check_without_not_valid");
    assert_eq!(
        check["scans"],
        serde_json::json!([{"relation": "items", "mode": "AccessExclusiveLock"}])
    );
    assert_eq!(risk_kinds(check), ["scan_under_lock"]);
    assert!(check["risks"][0]["safe_alternative"]
        .as_str()
        .unwrap()
        .contains("NOT VALID"));
    let not_null = statement(&plan, "005_set_not_null");
    assert_eq!(risk_kinds(not_null), ["scan_under_lock"]);
    assert!(not_null["risks"][0]["safe_alternative"]
        .as_str()
        .unwrap()
        .contains("SET NOT NULL"));
    // From the live database: the rows it holds, and a size to match.
    let table = &volatile["tables"][0];
    assert_eq!(table["relation"], "items");
    assert_eq!(table["exists"], true);
    assert_eq!(table["estimated_rows"], 1000);
    assert!(table["size_bytes"].as_i64().unwrap() > 8192, "{table:#}");
    assert_eq!(table["conflicts"], serde_json::json!([]));
}

#[tokio::test]
async fn the_json_plan_carries_every_field_for_each_statement() {
    let db = live_at_first_migration("plan_safe").await;

    let plan = json_plan(&db, "plan_safe");

    for key in ["schema_version", "migrations", "risky", "elapsed_ms"] {
        assert!(plan.get(key).is_some(), "{key} missing: {plan:#}");
    }
    for migration in plan["migrations"].as_array().unwrap() {
        for key in ["name", "version", "transactional", "contract", "statements"] {
            assert!(migration.get(key).is_some(), "{key} missing: {migration:#}");
        }
        for statement in migration["statements"].as_array().unwrap() {
            for key in [
                "index", "sql", "measured", "locks", "rewrites", "scans", "tables", "risks",
            ] {
                assert!(statement.get(key).is_some(), "{key} missing: {statement:#}");
            }
        }
    }
    let statements: Vec<&Value> = plan["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["statements"].as_array().unwrap())
        .collect();
    assert_eq!(statements.len(), 5, "{plan:#}");
}

#[tokio::test]
async fn the_safe_rewrites_are_not_flagged_and_a_concurrent_index_is_documented_not_measured() {
    let db = live_at_first_migration("plan_safe").await;

    let (code, stdout, stderr) = plan(&db, "plan_safe", &["--fail-on-risk", "--format", "json"]);

    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["risky"], false, "{plan:#}");
    let cic = statement(&plan, "003_index_concurrently");
    assert_eq!(cic["measured"], false);
    assert_eq!(plan["migrations"][1]["transactional"], false);
    assert!(
        has_lock(cic, "items", "ShareUpdateExclusiveLock"),
        "{cic:#}"
    );
    let validate = statement(&plan, "005_validate_check");
    assert_eq!(
        validate["scans"],
        serde_json::json!([{"relation": "items", "mode": "ShareUpdateExclusiveLock"}])
    );
    let not_valid = statement(&plan, "004_check_not_valid");
    assert_eq!(
        not_valid["scans"],
        serde_json::json!([]),
        "NOT VALID does not scan"
    );
}

#[tokio::test]
async fn fail_on_risk_exits_3_prints_a_table_and_leaves_the_live_database_and_no_scratch_database()
{
    let db = live_at_first_migration("plan_risky").await;

    let (code, stdout, stderr) = plan(&db, "plan_risky", &["--fail-on-risk"]);

    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("RISK rewrite: rewrites items"), "{stdout}");
    assert!(stdout.contains("items AccessExclusiveLock"), "{stdout}");
    assert!(
        stdout.contains("instead: CREATE INDEX CONCURRENTLY"),
        "{stdout}"
    );
    assert!(
        !database_exists(&scratch_name(&stderr)).await,
        "the scratch database is dropped"
    );
    let mut conn = db.connect().await;
    let columns = select_texts(
        &mut conn,
        "SELECT column_name::text AS value FROM information_schema.columns \
         WHERE table_name = 'items' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(
        columns,
        ["id", "name", "price"],
        "the live table is untouched"
    );
    let versions = select_texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations",
    )
    .await;
    assert_eq!(versions, ["001"]);
    let indexes = select_texts(
        &mut conn,
        "SELECT indexname::text AS value FROM pg_indexes WHERE tablename = 'items'",
    )
    .await;
    assert_eq!(indexes, ["items_pkey"]);
}

#[tokio::test]
async fn a_live_session_holding_a_conflicting_lock_is_named_with_its_application_and_start() {
    let db = live_at_first_migration("plan_risky").await;
    let mut url = db.url.clone();
    url.query_pairs_mut()
        .append_pair("application_name", "report-job");
    let mut holder = connect(&url).await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut holder,
        "BEGIN; SELECT count(*) FROM items",
    )
    .await
    .unwrap();
    let pid = select_texts(&mut holder, "SELECT pg_backend_pid()::text AS value")
        .await
        .remove(0);

    let plan = json_plan(&db, "plan_risky");

    let volatile = statement(&plan, "002_add_volatile_default");
    let conflicts = volatile["tables"][0]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{volatile:#}");
    assert_eq!(conflicts[0]["pid"].to_string(), pid);
    assert_eq!(conflicts[0]["application_name"], "report-job");
    assert_eq!(conflicts[0]["mode"], "AccessShareLock");
    assert!(
        conflicts[0]["since"].as_str().unwrap().ends_with('Z'),
        "{conflicts:?}"
    );
    // A plain index build takes SHARE, which lets readers be.
    let index = statement(&plan, "003_plain_index");
    assert_eq!(index["tables"][0]["conflicts"], serde_json::json!([]));
    diesel_async::SimpleAsyncConnection::batch_execute(&mut holder, "ROLLBACK")
        .await
        .unwrap();
}

#[tokio::test]
async fn nothing_pending_says_so_and_exits_0() {
    let db = TestDatabase::create().await;
    let dir = fixture("plan_safe");
    migrate_run(&db, &dir).await;

    let (code, stdout, stderr) = plan(&db, "plan_safe", &["--fail-on-risk"]);

    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "nothing pending: the schema is at 005\n");
    assert!(
        !stderr.contains("scratch database"),
        "no scratch database is made: {stderr}"
    );
}

#[tokio::test]
async fn a_failing_statement_names_its_migration_and_the_scratch_database_is_dropped() {
    let db = live_at_first_migration("plan_failing").await;

    let (code, stdout, stderr) = plan(&db, "plan_failing", &[]);

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("migration 002_broken, statement 2, failed on the scratch database"),
        "{stderr}"
    );
    assert!(stderr.contains("no_such_table"), "{stderr}");
    assert!(!database_exists(&scratch_name(&stderr)).await);
}

#[tokio::test]
async fn sigint_during_a_plan_drops_the_scratch_database() {
    let db = live_at_first_migration("plan_slow").await;
    let dir = fixture("plan_slow");
    let mut process = ConduitProcess::spawn(
        &db.url(),
        &["migrate", "plan", "--migrations-dir", &dir],
        &[],
    );
    let mut admin = connect(&server_url()).await;
    let mut sleeping = false;
    for _ in 0..600 {
        let found = select_texts(
            &mut admin,
            "SELECT count(*)::text AS value FROM pg_stat_activity \
             WHERE datname LIKE 'conduit_plan_%' AND query = 'SELECT pg_sleep(120)'",
        )
        .await;
        if found != ["0"] && process.output().contains("on the scratch database") {
            sleeping = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sleeping,
        "the plan never reached the slow statement: {}",
        process.output()
    );
    let name = scratch_name(&process.output());
    assert!(database_exists(&name).await);

    process.signal("INT");
    let status = process.wait_exit(Duration::from_secs(60)).await.unwrap();

    assert!(!status.success());
    assert!(
        process
            .output()
            .contains("interrupted; the scratch database was dropped"),
        "{}",
        process.output()
    );
    assert!(!database_exists(&name).await, "{name} is gone");
}

#[tokio::test]
async fn a_role_that_may_not_create_databases_is_told_so_in_one_line() {
    let db = live_at_first_migration("plan_risky").await;
    let role = format!("plan_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut conn = db.connect().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "CREATE ROLE {role} LOGIN NOCREATEDB; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
        ),
    )
    .await
    .unwrap();
    let mut url = with_database(&server_url(), &db.name);
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    let dir = fixture("plan_risky");

    let (status, output) = run_conduit(
        Some(url.as_str()),
        &["migrate", "plan", "--migrations-dir", &dir],
        &[],
    )
    .await;

    assert!(!status.success());
    let line = output
        .lines()
        .find(|l| l.starts_with("conduit: "))
        .unwrap_or_else(|| panic!("{output}"));
    assert!(line.contains("may not create databases"), "{output}");
    assert!(line.contains("CREATEDB"), "{output}");
    drop(conn);
    let mut admin = connect(&server_url()).await;
    let _ = diesel_async::SimpleAsyncConnection::batch_execute(
        &mut admin,
        &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.name),
    )
    .await;
    diesel_async::SimpleAsyncConnection::batch_execute(&mut admin, &format!("DROP ROLE {role}"))
        .await
        .unwrap();
}
