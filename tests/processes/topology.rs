//! What a replica behind a load balancer needs: on SIGTERM, `/ready` turns
//! 503 while requests are still served, and only then does it drain.

use std::time::Duration;

use crate::support::database::TestDatabase;
use crate::support::process::{get_json, ConduitProcess, BOOT};

#[tokio::test]
async fn sigterm_turns_ready_to_503_while_still_serving_then_drains() {
    let db = TestDatabase::create().await;
    // Long enough that the requests below land inside the window on any
    // machine; the test never waits for it to pass except through exit.
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[("CONDUIT_SHUTDOWN_READINESS_DELAY", "8s")],
    );
    let address = server.wait_ready(BOOT).await.unwrap();

    server.signal("TERM");
    let draining = server
        .wait_for_event(
            |e| e["message"] == "stopping: /ready answers 503 while requests are still served",
            BOOT,
        )
        .await;
    assert!(draining.is_some(), "{}", server.output());

    let (ready, body) = get_json(&format!("http://{address}/ready")).await;
    assert_eq!(ready, 503, "{body}");
    assert_eq!(body["status"], "draining");
    let (articles, _) = get_json(&format!("http://{address}/api/articles")).await;
    assert_eq!(articles, 200, "still serving while /ready says 503");
    let (health, _) = get_json(&format!("http://{address}/health")).await;
    assert_eq!(
        health, 200,
        "alive: liveness must not restart a draining replica"
    );

    let status = server.wait_exit(BOOT).await.unwrap();
    assert!(status.success(), "{}", server.output());
    let events = server.log_events();
    let position = |message: &str| events.iter().position(|e| e["message"] == message);
    assert!(
        position("stopping: no new connections, draining requests") > draining_index(&events),
        "the listener closes only after the readiness window:\n{}",
        server.output()
    );
}

fn draining_index(events: &[serde_json::Value]) -> Option<usize> {
    events.iter().position(|e| {
        e["message"] == "stopping: /ready answers 503 while requests are still served"
    })
}

/// An operator (or an orchestrator past its grace period) who signals
/// again does not wait out a long readiness delay.
#[tokio::test]
async fn a_second_signal_ends_the_readiness_delay() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[("CONDUIT_SHUTDOWN_READINESS_DELAY", "5m")],
    );
    server.wait_ready(BOOT).await.unwrap();

    server.signal("TERM");
    let draining = server
        .wait_for_event(
            |e| e["message"] == "stopping: /ready answers 503 while requests are still served",
            BOOT,
        )
        .await;
    assert!(draining.is_some(), "{}", server.output());
    server.signal("INT");

    // Far less than the delay: the second signal cut it short.
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.is_ok_and(|s| s.success()), "{}", server.output());
}

#[tokio::test]
async fn a_readiness_delay_past_five_minutes_is_refused() {
    let (status, output) = crate::support::process::run_conduit(
        None,
        &["--shutdown-readiness-delay", "10years", "migrate", "status"],
        &[],
    )
    .await;
    assert!(!status.success());
    assert!(output.contains("longer than 5m"), "{output}");
}

/// A boot can wait long (for the database, for another replica's
/// migration lock); a stop signal ends it at once rather than after the
/// wait (as PID 1 in a container, the signal would otherwise be ignored).
#[tokio::test]
async fn sigterm_during_boot_stops_at_once() {
    let mut server = ConduitProcess::spawn(
        "postgres://conduit:pw@127.0.0.1:1/conduit",
        &[],
        &[("CONDUIT_DB_WAIT", "5m")],
    );
    let waiting = server
        .wait_for_event(|e| e["message"] == "database not reachable yet", BOOT)
        .await;
    assert!(waiting.is_some(), "{}", server.output());

    server.signal("TERM");

    let status = server.wait_exit(BOOT).await.unwrap();
    assert!(status.success(), "{status:?}\n{}", server.output());
    assert!(
        server
            .wait_for_event(
                |e| e["message"] == "stopping during boot, before serving",
                BOOT
            )
            .await
            .is_some(),
        "{}",
        server.output()
    );
}
