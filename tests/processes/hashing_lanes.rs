//! The hashing queue under a flood of password changes, in a server of its
//! own (the queue is one per process): logins and registrations of others
//! go on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::database::TestDatabase;
use crate::support::http::register;
use crate::support::process::{ConduitProcess, BOOT};

/// One account floods PUT /api/user password changes from 120 connections
/// (its budget off, so that the queue is what is tested), each sending the
/// next as soon as the last is answered, or a second after a 503. Meanwhile another user logs in and
/// new users register: none of them is refused for a busy queue.
#[tokio::test]
async fn a_flood_of_password_changes_leaves_logins_and_registrations_the_queue() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[("CONDUIT_PASSWORD_CHANGES_PER_SESSION", "0")],
    );
    let address = server.wait_ready(BOOT).await.unwrap();
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let flooder = register(&client, &base, "flooder").await;
    register(&client, &base, "bystander").await;

    let stop = AtomicBool::new(false);
    let flood = (0..120).map(|i| {
        let (client, base, flooder, stop) = (&client, &base, &flooder, &stop);
        async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let response = client
                    .put(format!("{base}/api/user"))
                    .header("Authorization", format!("Token {flooder}"))
                    .json(&json!({"user": {"password": format!("flood-password-{i}")}}))
                    .send()
                    .await;
                let status = response.map_or(0, |r| r.status().as_u16());
                statuses.push(status);
                if status == 503 {
                    // Refused at once: back after its Retry-After, not in
                    // a busy loop that would starve the host (and the
                    // tests running beside this one) of CPU.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            statuses
        }
    });
    let others = async {
        // Let the flood fill what it can.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut answers = Vec::new();
        for i in 0..8 {
            let login = client
                .post(format!("{base}/api/users/login"))
                .json(
                    &json!({"user": {"email": "bystander@example.org", "password": "password123"}}),
                )
                .send()
                .await
                .expect("answered");
            let status = login.status().as_u16();
            answers.push(("login", status, login.text().await.unwrap_or_default()));
            let registration = client
                .post(format!("{base}/api/users"))
                .json(&json!({"user": {"username": format!("newcomer{i}"), "email": format!("newcomer{i}@example.org"), "password": "password123"}}))
                .send()
                .await
                .expect("answered");
            let status = registration.status().as_u16();
            answers.push((
                "registration",
                status,
                registration.text().await.unwrap_or_default(),
            ));
        }
        stop.store(true, Ordering::Release);
        answers
    };
    let (flood, answers) = tokio::join!(futures_util::future::join_all(flood), others);

    let refused_changes = flood.iter().flatten().filter(|s| **s == 503).count();
    assert!(
        refused_changes > 0,
        "the flood never filled its lane: {:?}",
        flood.iter().flatten().collect::<Vec<_>>()
    );
    for (what, status, body) in &answers {
        assert!(
            [200, 201].contains(status),
            "a {what} under the flood: {status} {body}"
        );
    }
    assert!(server.errors().is_empty(), "{}", server.output());
}
