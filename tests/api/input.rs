//! Bad input gets a 4xx in the error shape, never a 5xx or actix's plain text.

use crate::helpers::spawn_app;

async fn send_raw(
    app: &crate::helpers::TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let token = app.register("raw_sender").await;
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn malformed_json_is_422_naming_the_body() {
    let app = spawn_app().await;
    let (status, body) = send_raw(
        &app,
        "/api/articles",
        "application/json",
        b"{\"article\": {".to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["errors"]["body"][0]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_422_naming_the_field() {
    let app = spawn_app().await;
    let (status, body) = send_raw(
        &app,
        "/api/articles",
        "application/json",
        br#"{"article": {"title": 5, "description": "d", "body": "b"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["errors"]["title"][0].as_str().unwrap() == "must be a string",
        "{body}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_in_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = send_raw(&app, "/api/articles", "text/plain", b"hello".to_vec()).await;
    assert_eq!(status, 415);
    assert!(body["errors"]["body"].is_array(), "{body}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_in_the_error_shape() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"article": {{"title": "t", "description": "d", "body": "{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    let (status, body) =
        send_raw(&app, "/api/articles", "application/json", big.into_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(body["errors"]["body"][0], "is too large");
}

#[tokio::test]
async fn an_unknown_route_is_404_in_the_error_shape() {
    let app = spawn_app().await;
    let reply = app.get("/api/nothing-here", None).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error("route"), "not found");
}
