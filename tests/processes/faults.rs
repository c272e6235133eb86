//! Faults injected for real: the database stops, statements and migrations
//! meet locks, another replica holds the migration lock, the schema and the
//! binary disagree, the process is stopped or killed mid-request.

use std::time::{Duration, Instant};

use crate::support::cluster::TestCluster;
use crate::support::database::{connect, select_texts, TestDatabase};
use crate::support::http::register;
use crate::support::process::{fixture, run_conduit, ConduitProcess};
use diesel_async::SimpleAsyncConnection;
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(90);

/// A connection holding `articles` locked in an open transaction: every
/// request that reads articles waits behind it until it rolls back.
async fn lock_articles(db: &TestDatabase) -> diesel_async::AsyncPgConnection {
    let mut blocker = db.connect().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    blocker
}

#[tokio::test]
async fn a_database_outage_answers_503_quickly_and_recovers_without_a_restart() {
    database_outage("verified").await;
}

#[tokio::test]
async fn with_fast_recycling_an_outage_also_answers_503_and_recovers() {
    database_outage("fast").await;
}

/// Stops the server's database mid-run and starts it again.
async fn database_outage(recycle: &str) {
    let cluster = TestCluster::with_database("conduit").await;
    let mut server = ConduitProcess::spawn(
        cluster.url("conduit").as_str(),
        &[],
        &[
            ("CONDUIT_DB_ACQUIRE_TIMEOUT", "2"),
            ("CONDUIT_DB_RECYCLE", recycle),
        ],
    );
    let address = server.wait_ready(BOOT).await.unwrap();
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = register(&client, &base, "survivor").await;

    cluster.halt();
    let started = Instant::now();
    let during = client
        .get(format!("{base}/api/articles"))
        .send()
        .await
        .unwrap();
    let failed_after = started.elapsed();
    let status = during.status();
    let body: Value = during.json().await.unwrap();
    let ready = client
        .get(format!("{base}/ready"))
        .send()
        .await
        .unwrap()
        .status();
    eprintln!("outage ({recycle}): first request answered {status} after {failed_after:?}");

    assert_eq!(status, 503);
    assert_eq!(body, json!({"errors": {"database": ["unavailable"]}}));
    assert_eq!(ready, 503);
    assert!(
        failed_after < Duration::from_secs(10),
        "did not hang: {failed_after:?}"
    );
    assert!(
        server.try_exit_status().is_none(),
        "the process is still up"
    );

    cluster.resume();
    let resumed = Instant::now();
    loop {
        let reply = client.get(format!("{base}/api/articles")).send().await;
        if matches!(&reply, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(15),
            "no recovery: {}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "outage ({recycle}): requests succeed again {:?} after the database came back",
        resumed.elapsed()
    );
    let user = client
        .get(format!("{base}/api/user"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200, "the session outlived the outage");
    let panics = server.output().contains("panicked");
    assert!(!panics, "{}", server.output());
}

#[tokio::test]
async fn a_statement_over_the_timeout_answers_503_instead_of_hanging() {
    let db = TestDatabase::create().await;
    let mut server =
        ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_DB_STATEMENT_TIMEOUT", "1s")]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let mut blocker = lock_articles(&db).await;

    let started = Instant::now();
    let reply = reqwest::get(format!("http://{address}/api/articles"))
        .await
        .unwrap();
    let took = started.elapsed();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap();
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let after = reqwest::get(format!("http://{address}/api/articles"))
        .await
        .unwrap();

    eprintln!("statement timeout: answered {status} after {took:?}");
    assert_eq!(status, 503);
    assert_eq!(body, json!({"errors": {"database": ["unavailable"]}}));
    assert_eq!(after.status(), 200);
}

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

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_refuses_new_connections() {
    let db = TestDatabase::create().await;
    let mut server =
        ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_DB_STATEMENT_TIMEOUT", "30s")]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let mut blocker = lock_articles(&db).await;
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("http://{address}/api/articles"))
            .timeout(Duration::from_secs(60))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = tokio::net::TcpStream::connect(address).await;
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let answer = in_flight.await.unwrap();
    let status = server.wait_exit(Duration::from_secs(40)).await.unwrap();

    assert!(
        refused.is_err(),
        "new connections are refused while stopping"
    );
    let answer = answer.expect("the in-flight request was answered, not reset");
    assert_eq!(answer.status(), 200);
    assert!(status.success(), "{}", server.output());
}

#[tokio::test]
async fn after_sigkill_mid_writes_every_acknowledged_article_is_whole() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = register(&client, &base, "writer").await;

    let writers: Vec<_> = (0..60)
        .map(|i| {
            let client = client.clone();
            let base = base.clone();
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 10)).await;
                let reply = client
                    .post(format!("{base}/api/articles"))
                    .header("Authorization", format!("Token {token}"))
                    .json(&json!({"article": {"title": format!("Post {i}"), "description": "d", "body": "b", "tagList": [format!("t{i}"), "shared"]}}))
                    .send()
                    .await
                    .ok()?;
                if !reply.status().is_success() {
                    return None;
                }
                let body: Value = reply.json().await.ok()?;
                body["article"]["slug"].as_str().map(str::to_owned)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("KILL");
    let mut acknowledged = Vec::new();
    for writer in writers {
        if let Some(slug) = writer.await.unwrap() {
            acknowledged.push(slug);
        }
    }
    server.wait_exit(Duration::from_secs(10)).await.unwrap();

    let mut restarted = ConduitProcess::spawn(&db.url(), &[], &[]);
    restarted.wait_ready(BOOT).await.unwrap();
    let mut conn = db.connect().await;
    let stored = select_texts(&mut conn, "SELECT slug AS value FROM articles").await;
    let tagless = select_texts(
        &mut conn,
        "SELECT a.slug AS value FROM articles a \
         WHERE (SELECT count(*) FROM article_tags t WHERE t.article_id = a.id) <> 2",
    )
    .await;
    eprintln!(
        "sigkill: {} acknowledged, {} stored",
        acknowledged.len(),
        stored.len() - 1
    );

    assert!(
        !acknowledged.is_empty(),
        "some writes were acknowledged before the kill"
    );
    for slug in &acknowledged {
        assert!(stored.contains(slug), "acknowledged {slug} is lost");
    }
    assert!(tagless.is_empty(), "half-written articles: {tagless:?}");
}
