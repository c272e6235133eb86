//! What an operator sees, with the real binary: a revert that refuses, and
//! the purge of throttling rows under a flood.

use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::support::database::{select_texts, TestDatabase};
use crate::support::process::{run_conduit, ConduitProcess, BOOT};

pub(crate) async fn execute(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Reverting 002 while another article carries its tags refuses with its
/// own reason (the array of reasons was once read as an array literal).
#[tokio::test]
async fn reverting_the_seed_under_shared_tags_says_why_it_refuses() {
    let db = TestDatabase::create().await;
    let dir = tempdir_with_migrations(&["001_initial_schema", "002_seed_demo_user"]);
    let set = format!("--migrations-dir={}", dir.display());
    let (status, output) = run_conduit(Some(&db.url()), &["migrate", "run", &set], &[]).await;
    assert!(status.success(), "{output}");
    let mut conn = db.connect().await;
    execute(
        &mut conn,
        "INSERT INTO users (username, email, password_hash) \
         VALUES ('other', 'other@example.org', '$argon2id$other')",
    )
    .await;
    execute(
        &mut conn,
        "INSERT INTO articles (author_id, slug, title, description, body) \
         SELECT id, 'others', 'Others', 'd', 'b' FROM users WHERE username = 'other'",
    )
    .await;
    execute(
        &mut conn,
        "INSERT INTO article_tags (article_id, tag_id) \
         SELECT a.id, t.id FROM articles a, tags t WHERE a.slug = 'others' AND t.name = 'conduit'",
    )
    .await;

    let (status, output) = run_conduit(Some(&db.url()), &["migrate", "revert", &set], &[]).await;

    assert!(!status.success(), "{output}");
    assert!(
        output.contains(
            "cannot revert 002_seed_demo_user: other articles carry the tags welcome or conduit"
        ),
        "{output}"
    );
    assert!(!output.contains("malformed array literal"), "{output}");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir_with_migrations(names: &[&str]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("conduit-migrations-{}", uuid::Uuid::new_v4()));
    for name in names {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name);
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }
    dir
}

async fn throttle_rows(conn: &mut AsyncPgConnection) -> u64 {
    select_texts(
        conn,
        "SELECT count(*)::text AS value FROM throttle_counters",
    )
    .await[0]
        .parse()
        .unwrap()
}

/// A backlog larger than one round of the old purge (100 batches of
/// 1000): a round now deletes until nothing dead is left, so the table
/// empties instead of keeping the rest for ten minutes.
#[tokio::test]
async fn the_purge_clears_a_backlog_larger_than_any_fixed_round() {
    let db = TestDatabase::create().await;
    let (status, output) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(status.success(), "{output}");
    let mut conn = db.connect().await;
    execute(
        &mut conn,
        "INSERT INTO throttle_counters (key, attempts, window_ends_at, next_at) \
         SELECT 'login-address:flood-' || g, 1, now() - interval '1 minute', '-infinity' \
         FROM generate_series(1, 150000) g",
    )
    .await;

    let _server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let started = Instant::now();
    let mut left = throttle_rows(&mut conn).await;
    while left > 0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = throttle_rows(&mut conn).await;
    }
    assert_eq!(left, 0, "rows left after {:?}", started.elapsed());
}

/// A measurement, not a check (run it with `--ignored --nocapture`): failed
/// logins for unknown accounts, each from an IPv6 /64 of its own behind a
/// trusted proxy, for CONDUIT_FLOOD_SECS (60) with a throttling window of
/// CONDUIT_FLOOD_WINDOW (10s, so that rows end within the flood); prints
/// the rows added and the rows left in `throttle_counters`.
#[tokio::test]
#[ignore]
async fn measure_throttle_rows_after_a_flood() {
    let seconds: u64 = std::env::var("CONDUIT_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let window = std::env::var("CONDUIT_FLOOD_WINDOW").unwrap_or_else(|_| "10s".into());
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[
            ("CONDUIT_TRUSTED_PROXIES", "127.0.0.0/8"),
            ("CONDUIT_LOGIN_FAILURE_WINDOW", &window),
            ("CONDUIT_LOGIN_MAX_BACKOFF", "1s"),
        ],
    );
    let address = server.wait_ready(BOOT).await.unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clients: Vec<_> = (0..16u32)
        .map(|worker| {
            let client = client.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < deadline {
                    n += 1;
                    let _ = client
                        .post(format!("http://{address}/api/users/login"))
                        .header("X-Forwarded-For", format!("2001:db8:{worker:x}:{n:x}::1"))
                        .json(&serde_json::json!({"user": {
                            "email": format!("nobody-{worker}-{n}@example.org"),
                            "password": "wrong-password"}}))
                        .send()
                        .await;
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut conn = db.connect().await;
    let started = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(10)).await;
        println!(
            "t={:>3}s rows={}",
            started.elapsed().as_secs(),
            throttle_rows(&mut conn).await
        );
    }
    for client in clients {
        client.await.unwrap();
    }
    let added = select_texts(
        &mut conn,
        "SELECT n_tup_ins::text AS value FROM pg_stat_user_tables \
         WHERE relname = 'throttle_counters'",
    )
    .await;
    println!(
        "flood of {seconds}s, window {window}: {} logins, {} rows added (~{}/s), {} rows in the table",
        std::sync::atomic::AtomicU64::load(&sent, std::sync::atomic::Ordering::Relaxed),
        added[0],
        added[0].parse::<u64>().unwrap_or(0) / seconds.max(1),
        throttle_rows(&mut conn).await
    );
    server.signal("TERM");
}
