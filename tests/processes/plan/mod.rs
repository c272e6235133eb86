//! `conduit migrate plan` against real databases: what it measures on its
//! scratch database, what it reads from the live one, and that the
//! scratch database is gone after success, an error and SIGINT.

mod report;
mod scratch;

use serde_json::Value;

use crate::support::database::{connect, select_texts, server_url, TestDatabase};
use crate::support::process::{base_command, fixture, run_conduit};

/// A live database at the fixture's first migration, `items` holding
/// 1000 analyzed rows.
pub(crate) async fn live_at_first_migration(set: &str) -> TestDatabase {
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
pub(crate) async fn migrate_run(db: &TestDatabase, dir: &str) {
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
pub(crate) fn plan(db: &TestDatabase, set: &str, extra: &[&str]) -> (Option<i32>, String, String) {
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

pub(crate) fn json_plan(db: &TestDatabase, set: &str) -> Value {
    let (code, stdout, stderr) = plan(db, set, &["--format", "json"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The scratch database's name, from the line plan prints when it starts.
pub(crate) fn scratch_name(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.split("on the scratch database ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no scratch database line: {stderr}"))
        .to_owned()
}

pub(crate) async fn database_exists(name: &str) -> bool {
    let mut admin = connect(&server_url()).await;
    select_texts(
        &mut admin,
        &format!("SELECT count(*)::text AS value FROM pg_database WHERE datname = '{name}'"),
    )
    .await
        == ["1"]
}

pub(crate) fn statement<'a>(plan: &'a Value, migration: &str) -> &'a Value {
    let found = plan["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == migration)
        .unwrap_or_else(|| panic!("no {migration} in {plan:#}"));
    &found["statements"][0]
}

pub(crate) fn has_lock(statement: &Value, relation: &str, mode: &str) -> bool {
    statement["locks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == relation && l["mode"] == mode)
}

pub(crate) fn risk_kinds(statement: &Value) -> Vec<String> {
    statement["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}
