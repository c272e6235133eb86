//! Faults injected for real: the database stops, statements meet locks,
//! the process is stopped or killed mid-request.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use serde_json::{json, Value};

use crate::support::cluster::TestCluster;
use crate::support::database::{select_texts, TestDatabase};
use crate::support::http::register;
use crate::support::process::{ConduitProcess, BOOT};

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
