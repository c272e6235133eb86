//! What the real binary logs and counts of each request: the route
//! pattern and request id, metrics, and no lines for passing probes.

use std::time::Duration;

use crate::support::database::TestDatabase;
use crate::support::http::metrics;
use crate::support::process::{get_json, ConduitProcess, BOOT};

#[tokio::test]
async fn passing_probes_stay_out_of_the_request_log_and_other_requests_do_not() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();

    for path in ["/health", "/ready", "/api/tags"] {
        let (status, _) = get_json(&format!("http://{address}{path}")).await;
        assert_eq!(status, 200, "{path}");
    }

    let logged = |route: &'static str| move |e: &serde_json::Value| e["route"] == route;
    let tags = server
        .wait_for_event(logged("/api/tags"), Duration::from_secs(10))
        .await;
    assert!(
        tags.is_some(),
        "GET /api/tags is logged:\n{}",
        server.output()
    );
    let events = server.log_events();
    let probes: Vec<_> = events
        .iter()
        .filter(|e| logged("/health")(e) || logged("/ready")(e))
        .collect();
    assert!(probes.is_empty(), "probe lines: {probes:?}");
}

#[tokio::test]
async fn requests_are_logged_with_route_pattern_and_request_id_and_counted_in_metrics() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://{address}/api/tags"))
        .header("x-request-id", "test-request-42")
        .header("authorization", "Token very-secret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "test-request-42");
    let generated = client
        .get(format!("http://{address}/api/tags"))
        .send()
        .await
        .unwrap();
    assert!(!generated.headers()["x-request-id"].is_empty());
    let metrics = metrics(&client, &format!("http://{address}")).await;

    assert!(
        metrics.contains(
            r#"conduit_http_requests_total{method="GET",route="/api/tags",status="200"} 2"#
        ),
        "{metrics}"
    );
    for name in [
        "conduit_db_pool_size",
        "conduit_db_pool_in_use",
        "conduit_db_pool_waiting",
        "conduit_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    assert!(metrics.contains("conduit_schema_version 12"), "{metrics}");
    let line = server
        .wait_for_event(
            |e| {
                e["request_id"] == "test-request-42" || e["span"]["request_id"] == "test-request-42"
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|| panic!("no log line with the request id:\n{}", server.output()));
    assert_eq!(line["route"], "/api/tags");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].is_number());
    assert!(!server.output().contains("very-secret-token"));
}
