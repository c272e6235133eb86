//! Requests every kind of test makes against a running server.

use serde_json::{json, Value};

/// Registers `name` (email `name@example.org`, password `password123`) on
/// the server at `base` (`http://host:port`); returns the token.
pub async fn register(client: &reqwest::Client, base: &str, name: &str) -> String {
    let response = client
        .post(format!("{base}/api/users"))
        .json(&json!({"user": {"username": name, "email": format!("{name}@example.org"), "password": "password123"}}))
        .send()
        .await
        .expect("the registration is answered");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, 201, "{body}");
    body["user"]["token"].as_str().expect("a token").to_owned()
}

/// The Prometheus text of the server at `base`.
pub async fn metrics(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a text body")
}
