//! The login and registration throttles, shared in PostgreSQL: strict per
//! (account, address), backoff per account and per address, registrations
//! per address. Helpers that speak from many addresses through a trusted proxy.

mod accounts;
mod addresses;
mod give_back;

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A server that takes the client's address from X-Forwarded-For (the
/// tests' connections come from 127.0.0.1, listed as a trusted proxy), so
/// that one test can speak from many addresses.
pub(crate) async fn behind_a_proxy(flags: &[&str]) -> TestApp {
    let mut all = vec!["--trusted-proxies", "127.0.0.0/8"];
    all.extend_from_slice(flags);
    crate::helpers::spawn_app_with(&all).await
}

/// A POST of `body` to `path`, sent through the trusted proxy on behalf of
/// `address`.
async fn post_from(app: &TestApp, address: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("X-Forwarded-For", address)
        .json(&body)
        .send()
        .await
        .expect("answered")
}

/// The `Retry-After` of `response`, in seconds, if any.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// A login from `address`: its status and `Retry-After` (seconds), if any.
pub(crate) async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> (u16, Option<u64>) {
    let body = json!({"user": {"email": email, "password": password}});
    let response = post_from(app, address, "/api/users/login", body).await;
    (response.status().as_u16(), retry_after(&response))
}

/// A registration of `name` from `address`: its status, `Retry-After` and body.
pub(crate) async fn register_from(
    app: &TestApp,
    address: &str,
    name: &str,
) -> (u16, Option<u64>, Value) {
    let body = json!({"user": {"username": name, "email": format!("{name}@example.org"), "password": "password123"}});
    let response = post_from(app, address, "/api/users", body).await;
    let status = response.status().as_u16();
    let retry_after = retry_after(&response);
    (
        status,
        retry_after,
        response.json().await.expect("a JSON body"),
    )
}

/// Wrong passwords for `email`, `count` at once from each of `addresses`.
pub(crate) async fn hammer(
    app: &TestApp,
    addresses: &[String],
    email: &str,
    count: usize,
) -> Vec<u16> {
    let attempts = addresses.iter().flat_map(|address| {
        (0..count).map(move |i| async move {
            login_from(app, address, email, &format!("guess-{i}-wrong"))
                .await
                .0
        })
    });
    futures_util::future::join_all(attempts).await
}
