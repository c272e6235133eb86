//! Migration guard rails with the real binary, each on an empty database
//! of its own: strict mode on `migrate run`, migrations merged out of
//! order, two migrations of one version, a concurrent index left INVALID,
//! lock timeouts diagnosed and retried, repair, drift and baseline.

use std::time::{Duration, Instant};

use crate::support::database::{select_texts, wait_for_a_lock_waiter, TestDatabase};
use crate::support::embedded;
use crate::support::http::metrics;
use crate::support::process::{fixture, get_json, run_conduit, ConduitProcess};
use diesel_async::SimpleAsyncConnection;
use serde_json::json;

const BOOT: Duration = Duration::from_secs(90);

async fn applied_versions(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations ORDER BY version",
    )
    .await
}

async fn tables(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT table_name::text AS value FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_\\_%' ORDER BY 1",
    )
    .await
}

async fn migrate(db: &TestDatabase, args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    let (status, output) = run_conduit(Some(&db.url()), &all, envs).await;
    (status.success(), output)
}

/// A copy of one migration set in a directory of its own, to edit.
struct ScratchMigrations(std::path::PathBuf);

impl ScratchMigrations {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "conduit-guard-rails-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, up: &str) {
        let migration = self.0.join(name);
        std::fs::create_dir_all(&migration).unwrap();
        std::fs::write(migration.join("up.sql"), up).unwrap();
        std::fs::write(migration.join("down.sql"), "SELECT 1;\n").unwrap();
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for ScratchMigrations {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

// ---- 3. A failed concurrent index ----

#[tokio::test]
async fn a_rerun_drops_the_invalid_index_its_failed_run_left_and_nothing_else() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_invalid_index");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;
    assert!(!ran, "duplicates make the unique index fail: {output}");
    let mut conn = db.connect().await;
    let validity =
        "SELECT format('%s=%s', c.relname, i.indisvalid::text) AS value FROM pg_index i \
                    JOIN pg_class c ON c.oid = i.indexrelid \
                    WHERE c.relname LIKE 'widgets\\_%\\_key' ORDER BY 1";
    assert_eq!(
        select_texts(&mut conn, validity).await,
        ["widgets_name_key=false"]
    );
    // Someone else's failed index, which the migration does not build.
    let other = conn
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY widgets_other_key ON widgets (name)")
        .await;
    assert!(other.is_err());
    conn.batch_execute(
        "DELETE FROM widgets WHERE id = (SELECT max(id) FROM widgets WHERE name = 'spanner')",
    )
    .await
    .unwrap();

    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;

    eprintln!("{output}");
    assert!(ran, "{output}");
    assert!(
        output.contains(
            "dropped the INVALID index widgets_name_key that a failed run of 002_unique_widget_names left behind"
        ),
        "{output}"
    );
    assert_eq!(
        select_texts(&mut conn, validity).await,
        ["widgets_name_key=true", "widgets_other_key=false"]
    );
    assert_eq!(applied_versions(&db).await, ["001", "002"]);
}

#[tokio::test]
async fn a_valid_index_of_the_same_name_is_never_dropped() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_invalid_index");
    let (ran, _) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;
    assert!(!ran);
    let mut conn = db.connect().await;
    // By hand: the failed index replaced by a valid, non-unique one.
    conn.batch_execute(
        "DROP INDEX widgets_name_key; CREATE INDEX widgets_name_key ON widgets (name)",
    )
    .await
    .unwrap();

    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;

    assert!(!ran, "{output}");
    assert!(output.contains("already exists"), "{output}");
    assert!(!output.contains("dropped the INVALID index"), "{output}");
    let kept = select_texts(
        &mut conn,
        "SELECT indisvalid::text AS value FROM pg_index WHERE indexrelid = 'widgets_name_key'::regclass",
    )
    .await;
    assert_eq!(kept, ["true"]);
}

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
