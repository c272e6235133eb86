//! Hardening with the real binary: settings that cannot work are refused
//! at start, naming the setting; SIGINT drains like SIGTERM.

use std::time::Duration;

use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;

use crate::support::database::{select_texts, wait_for_a_lock_waiter, TestDatabase};
use crate::support::http::register;
use crate::support::process::{run_conduit, ConduitProcess, BOOT};

#[tokio::test]
async fn settings_that_cannot_work_are_refused_at_start_naming_the_setting() {
    let db = TestDatabase::create().await;
    let cases = [
        ("CONDUIT_SESSION_TTL", "0s"),
        ("CONDUIT_SESSION_TTL", "100000000000d"),
        ("CONDUIT_CORS_ORIGINS", "*"),
        ("CONDUIT_CORS_ORIGINS", "https://app.example.org/path"),
        ("CONDUIT_DB_STATEMENT_TIMEOUT", "0s"),
        ("CONDUIT_MIGRATION_LOCK_TIMEOUT", "0s"),
        ("CONDUIT_DB_ACQUIRE_TIMEOUT", "0"),
        ("CONDUIT_LOGIN_FAILURE_WINDOW", "0s"),
        ("CONDUIT_LOGIN_MAX_BACKOFF", "0s"),
        ("CONDUIT_LOGIN_MAX_BACKOFF", "1h"),
        ("CONDUIT_LOGIN_MAX_FAILURES", "2000000"),
        ("CONDUIT_REGISTRATIONS_PER_ADDRESS", "-1"),
        ("CONDUIT_SHUTDOWN_TIMEOUT", "soon"),
        ("CONDUIT_TRUSTED_PROXIES", "proxy.internal"),
    ];
    for (name, value) in cases {
        let (status, output) = run_conduit(Some(&db.url()), &["serve"], &[(name, value)]).await;
        assert!(!status.success(), "{name}={value} was accepted:\n{output}");
        assert!(
            !output.contains("listening"),
            "{name}={value}: listened before refusing:\n{output}"
        );
        let named = output
            .lines()
            .any(|line| line.contains(name) || line.contains(&cli_flag(name)));
        assert!(
            named,
            "{name}={value}: the message does not name it:\n{output}"
        );
    }
}

/// clap names a value it cannot parse by its flag (`--session-ttl`).
fn cli_flag(name: &str) -> String {
    let flag = name.trim_start_matches("CONDUIT_").to_lowercase();
    format!("--{}", flag.replace('_', "-"))
}

/// A renamed setting's old name is still read, with a warning, but a flag
/// or the new name wins over it.
#[tokio::test]
async fn an_old_setting_name_is_read_but_the_flag_and_the_new_name_win() {
    let unreachable = "postgres://conduit:pw@127.0.0.1:1/conduit";
    let waited = |output: &str| {
        output
            .lines()
            .find(|line| line.contains("could not connect"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no connect failure in:\n{output}"))
    };
    let (status, old_only) = run_conduit(
        Some(unreachable),
        &["serve"],
        &[("CONDUIT_DB_WAIT_SECS", "1")],
    )
    .await;
    assert!(!status.success());
    assert!(waited(&old_only).contains("within 1s"), "{old_only}");
    assert!(
        old_only.contains("CONDUIT_DB_WAIT_SECS is the old name of CONDUIT_DB_WAIT"),
        "{old_only}"
    );
    let (_, flag_wins) = run_conduit(
        Some(unreachable),
        &["serve", "--db-wait", "0s"],
        &[("CONDUIT_DB_WAIT_SECS", "60")],
    )
    .await;
    assert!(waited(&flag_wins).contains("within 0s"), "{flag_wins}");
    let (_, new_wins) = run_conduit(
        Some(unreachable),
        &["serve"],
        &[("CONDUIT_DB_WAIT", "0s"), ("CONDUIT_DB_WAIT_SECS", "60")],
    )
    .await;
    assert!(waited(&new_wins).contains("within 0s"), "{new_wins}");
}

#[tokio::test]
async fn every_duration_setting_takes_units_and_bare_seconds() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[
            ("CONDUIT_DB_WAIT", "1m"),
            ("CONDUIT_DB_ACQUIRE_TIMEOUT", "2500ms"),
            ("CONDUIT_MIGRATION_LOCK_WAIT", "120"),
            ("CONDUIT_SHUTDOWN_TIMEOUT", "10s"),
            ("CONDUIT_SESSION_TTL", "12h"),
        ],
    );
    server.wait_ready(BOOT).await.unwrap();
}

/// SIGINT (Ctrl-C) lets a request in flight finish, as SIGTERM does. The
/// request is held in flight deterministically: it waits for a row lock
/// this test holds until after the signal.
#[tokio::test]
async fn sigint_lets_in_flight_requests_finish() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let token = register(&client, &base, "patient").await;

    let mut holder = db.connect().await;
    let mut watcher = db.connect().await;
    let (status, body) = holder
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query("SELECT id FROM users WHERE username = 'patient' FOR UPDATE")
                .execute(conn)
                .await?;
            let in_flight = tokio::spawn({
                let client = client.clone();
                let url = format!("{base}/api/user");
                async move {
                    let response = client
                        .put(url)
                        .header("Authorization", format!("Token {token}"))
                        .json(&json!({"user": {"bio": "still here"}}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    Ok::<_, String>((status, response.text().await.unwrap_or_default()))
                }
            });
            let blocked = wait_for_a_lock_waiter(&mut watcher, || false).await;
            assert!(blocked, "the update never waited for the row lock");

            server.signal("INT");
            // Once the listener is closed the stop has begun; the request
            // is still in flight behind the lock.
            let mut stopping = false;
            for _ in 0..3000 {
                if reqwest::get(format!("{base}/health")).await.is_err() {
                    stopping = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(stopping, "the server kept accepting after SIGINT");
            Ok(in_flight)
        })
        .await
        .expect("the lock is released")
        .await
        .expect("the request task")
        .expect("the in-flight request was answered, not cut");
    assert_eq!(status, 200, "{body}");

    let exit = server.wait_exit(Duration::from_secs(60)).await.unwrap();
    assert!(exit.success(), "{}", server.output());
    let bio = select_texts(
        &mut db.connect().await,
        "SELECT bio AS value FROM users WHERE username = 'patient'",
    )
    .await;
    assert_eq!(bio, ["still here"]);
}

/// With the hashing queue full, registrations are refused at once with
/// 503 and Retry-After (never a 500, never a half-written account), while
/// a registration of a taken email is still a 409: it is checked before
/// the hash, so a flood of them costs no hashing.
#[tokio::test]
async fn a_full_hashing_queue_answers_503_at_once_and_taken_names_409() {
    let db = TestDatabase::create().await;
    // Registrations from one address are throttled too; off here, where
    // the hashing queue is what is tested.
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[
            ("CONDUIT_HASH_QUEUE_LIMIT", "1"),
            ("CONDUIT_REGISTRATIONS_PER_ADDRESS", "0"),
        ],
    );
    let address = server.wait_ready(BOOT).await.unwrap();
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    register(&client, &base, "owner").await;

    let requests = (0..120).map(|i| {
        let client = client.clone();
        let url = format!("{base}/api/users");
        // Every other request asks for the taken email.
        let email = if i % 2 == 0 {
            format!("flood{i}@example.org")
        } else {
            "OWNER@example.org".to_owned()
        };
        async move {
            let response = client
                .post(url)
                .json(&json!({"user": {"username": format!("flood{i}"), "email": email, "password": "password123"}}))
                .send()
                .await
                .expect("answered");
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (i, status, retry_after, body)
        }
    });
    let answers = futures_util::future::join_all(requests).await;

    let mut created = 0;
    let mut refused = 0;
    for (i, status, retry_after, body) in &answers {
        match (i % 2, status) {
            (1, 409) => assert_eq!(body["errors"]["email"][0], "has already been taken"),
            (0, 201) => created += 1,
            (0, 503) => {
                refused += 1;
                assert!(retry_after, "503 without Retry-After: {body}");
                assert!(body["errors"]["server"].is_array(), "{body}");
            }
            _ => panic!("request {i}: {status} {body}"),
        }
    }
    assert!(
        refused > 0,
        "the queue of one never filled: {created} created"
    );
    let users = select_texts(
        &mut db.connect().await,
        "SELECT count(*)::text AS value FROM users WHERE username LIKE 'flood%'",
    )
    .await;
    assert_eq!(
        users,
        [created.to_string()],
        "every 201 and only they exist"
    );
    let login = client
        .post(format!("{base}/api/users/login"))
        .json(&json!({"user": {"email": "owner@example.org", "password": "password123"}}))
        .send()
        .await
        .expect("answered");
    assert_eq!(login.status(), 200, "the owner still logs in afterwards");
}

/// Two replicas on one database share the login budget (it is counted in
/// PostgreSQL): failures on one are refused on the other, and wrong
/// passwords sent at once to both are counted while in flight, so exactly
/// the budget is checked across the two.
#[tokio::test]
async fn replicas_share_the_login_budget() {
    let db = TestDatabase::create().await;
    let envs = [("CONDUIT_LOGIN_MAX_FAILURES", "3")];
    let mut a = ConduitProcess::spawn(&db.url(), &[], &envs);
    let mut b = ConduitProcess::spawn(&db.url(), &[], &envs);
    let a = format!("http://{}", a.wait_ready(BOOT).await.unwrap());
    let b = format!("http://{}", b.wait_ready(BOOT).await.unwrap());
    let client = reqwest::Client::new();
    register(&client, &a, "shared").await;
    register(&client, &a, "parallel").await;

    let login = |base: &str, email: &str, password: &str| {
        let request = client
            .post(format!("{base}/api/users/login"))
            .json(&json!({"user": {"email": email, "password": password}}));
        async move { request.send().await.expect("answered").status().as_u16() }
    };
    for _ in 0..3 {
        assert_eq!(login(&a, "shared@example.org", "wrong-password").await, 401);
    }
    assert_eq!(
        login(&b, "shared@example.org", "wrong-password").await,
        429,
        "the failures on A count on B"
    );
    assert_eq!(
        login(&b, "shared@example.org", "password123").await,
        429,
        "strict for this account from this address, right password or not"
    );

    let guesses = (0..30).map(|i| {
        let base = if i % 2 == 0 { &a } else { &b };
        login(base, "parallel@example.org", "wrong-password")
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!((count(401), count(429)), (3, 27), "{statuses:?}");
}
