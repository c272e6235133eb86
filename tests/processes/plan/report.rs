//! What the plan reports: locks, rewrites and scans with the safe
//! alternative, every JSON field, the safe rewrites unflagged, the live
//! sessions in the way, and nothing pending.

use serde_json::Value;

use crate::plan::{
    has_lock, json_plan, live_at_first_migration, migrate_run, plan, risk_kinds, statement,
};
use crate::support::database::{connect, select_texts, TestDatabase};
use crate::support::process::fixture;

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
