//! The plan's scratch database and exits: --fail-on-risk, a failing
//! statement, SIGINT, and a role that may not create databases.

use std::time::Duration;

use crate::plan::{database_exists, live_at_first_migration, plan, scratch_name};
use crate::support::database::{connect, select_texts, server_url, with_database};
use crate::support::process::{fixture, run_conduit, ConduitProcess};

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
