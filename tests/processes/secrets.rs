//! After a full API run, no token and no password appears in the logs, in
//! an error message, or anywhere in the database.

use std::process::Command;
use std::time::Duration;

use crate::support::database::TestDatabase;
use crate::support::process::ConduitProcess;
use serde_json::{json, Value};

#[tokio::test]
async fn tokens_and_passwords_never_reach_the_logs_or_the_database_in_clear() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[("RUST_LOG", "debug")]);
    let address = server.wait_ready(Duration::from_secs(90)).await.unwrap();
    let base = format!("http://{address}/api");
    let client = reqwest::Client::new();
    let first_password = "first-Secret-pass-4711";
    let second_password = "second-Secret-pass-0815";
    let wrong_password = "wrong-Secret-pass-1234";
    let mut tokens = Vec::new();
    let mut responses = String::new();

    let mut call = async |method: reqwest::Method,
                          path: &str,
                          token: Option<&str>,
                          body: Option<Value>|
           -> Value {
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        responses.push_str(&text);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    use reqwest::Method as M;
    let registered = call(M::POST, "/users", None, Some(json!({"user": {"username": "secretive", "email": "secretive@example.org", "password": first_password}}))).await;
    let token = registered["user"]["token"].as_str().unwrap().to_owned();
    tokens.push(token.clone());
    call(
        M::POST,
        "/users/login",
        None,
        Some(json!({"user": {"email": "secretive@example.org", "password": wrong_password}})),
    )
    .await;
    let logged_in = call(
        M::POST,
        "/users/login",
        None,
        Some(json!({"user": {"email": "secretive@example.org", "password": first_password}})),
    )
    .await;
    tokens.push(logged_in["user"]["token"].as_str().unwrap().to_owned());
    call(
        M::PUT,
        "/user",
        Some(&token),
        Some(json!({"user": {"password": second_password, "bio": "b"}})),
    )
    .await;
    call(M::GET, "/user", Some(&tokens[1]), None).await;
    let article = call(
        M::POST,
        "/articles",
        Some(&token),
        Some(json!({"article": {"title": "T", "description": "D", "body": "B", "tagList": ["x"]}})),
    )
    .await;
    let slug = article["article"]["slug"].as_str().unwrap().to_owned();
    call(
        M::POST,
        &format!("/articles/{slug}/comments"),
        Some(&token),
        Some(json!({"comment": {"body": "c"}})),
    )
    .await;
    call(
        M::POST,
        &format!("/articles/{slug}/favorite"),
        Some(&token),
        None,
    )
    .await;
    call(M::GET, "/articles", Some(&token), None).await;
    call(
        M::PUT,
        "/user",
        Some(&token),
        Some(json!({"user": {"password": "short"}})),
    )
    .await;
    call(M::DELETE, "/user/session", Some(&token), None).await;
    call(M::GET, "/user", Some(&token), None).await;

    let dump = Command::new(std::env::var("PG_DUMP").unwrap_or_else(|_| "pg_dump".into()))
        .args(["--data-only", "--no-owner", &db.url()])
        .output()
        .expect("run pg_dump");
    assert!(dump.status.success());
    let database = String::from_utf8_lossy(&dump.stdout);
    let logs = server.output();
    assert!(
        logs.lines().count() > 10,
        "the server logged the run:\n{logs}"
    );
    assert!(
        database.contains("secretive@example.org"),
        "the dump has the data"
    );
    for secret in [first_password, second_password, wrong_password]
        .iter()
        .copied()
        .chain(tokens.iter().map(String::as_str))
    {
        assert!(!logs.contains(secret), "{secret} is in the logs");
        assert!(!database.contains(secret), "{secret} is in the database");
    }
    for password in [first_password, second_password, wrong_password] {
        assert!(
            !responses.contains(password),
            "{password} was echoed in a response"
        );
    }
}
