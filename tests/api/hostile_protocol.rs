//! The protocol as a hostile or careless client speaks it: bodies that are
//! not JSON, or more than one JSON value; methods a path does not take;
//! HEAD; `Expect: 100-continue`. Raw sockets where a client library would hide it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app, TestApp};
use crate::support::raw_http::{header, read_response, read_until_closed, send, socket_address};

pub(crate) const ANSWER: Duration = Duration::from_secs(10);

/// POSTs `body` with the given Content-Type (None: no header at all).
pub(crate) async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// What a page on another site can send with `fetch(..., {mode: "no-cors"})`
/// or a form, with no preflight: no Content-Type, or a CORS-safelisted one.
const WITHOUT_PREFLIGHT: [Option<&str>; 5] = [
    None,
    Some("text/plain"),
    Some("text/plain;charset=UTF-8"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=x"),
];

#[tokio::test]
async fn a_body_that_does_not_say_it_is_json_is_refused_with_415() {
    let app = spawn_app().await;
    let body = json!({"user": {"username": "nojson", "email": "nojson@example.org", "password": "password123"}})
        .to_string();
    for content_type in WITHOUT_PREFLIGHT {
        let (status, reply) = post_raw(&app, "/api/users", content_type, &body).await;
        assert_eq!(status, 415, "{content_type:?}: {reply}");
        assert!(
            reply["errors"]["body"][0]
                .as_str()
                .is_some_and(|m| m.contains("application/json")),
            "{content_type:?}: {reply}"
        );
    }
    let (status, reply) = post_raw(
        &app,
        "/api/users",
        Some("application/json; charset=utf-8"),
        &body,
    )
    .await;
    assert_eq!(status, 201, "{reply}");
}

/// No Content-Type and no body at all: nothing to refuse as not JSON, so
/// the answer is the spec's 422 for a missing body, not an undocumented 415.
#[tokio::test]
async fn a_request_with_no_body_and_no_content_type_is_422_for_its_missing_body() {
    let app = spawn_app().await;

    let (status, reply) = post_raw(&app, "/api/users", None, "").await;

    assert_eq!(status, 422, "{reply}");
    assert!(reply["errors"].is_object(), "{reply}");
}

#[tokio::test]
async fn what_a_page_can_send_cross_site_without_a_preflight_spends_no_login_budget() {
    let app = spawn_app().await;
    app.register("victim").await;
    let wrong = json!({"user": {"email": "victim@example.org", "password": "not-the-password"}})
        .to_string();
    // More than the account's budget (10 by default), from its own address.
    for round in 0..3 {
        for content_type in WITHOUT_PREFLIGHT {
            let (status, reply) = post_raw(&app, "/api/users/login", content_type, &wrong).await;
            assert_eq!(status, 415, "round {round}, {content_type:?}: {reply}");
        }
    }
    let reply = app.login("victim@example.org", "password123").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_body_must_be_exactly_one_json_value() {
    let app = spawn_app().await;
    let token = app.register("onevalue").await;
    let article = json!({"article": {"title": "One value", "description": "d", "body": "b"}});
    let send_article = |body: String| {
        app.client
            .post(format!("{}/api/articles", app.address))
            .header("Authorization", format!("Token {token}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for trailing in [
        " trailing garbage",
        "{}",
        &article.to_string(),
        " []",
        "\n1",
        "x",
    ] {
        let response = send_article(format!("{article}{trailing}")).await.unwrap();
        let status = response.status().as_u16();
        let reply: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 422, "followed by {trailing:?}: {reply}");
        assert!(
            reply["errors"]["body"][0]
                .as_str()
                .is_some_and(|m| m.contains("exactly one JSON value")),
            "{reply}"
        );
    }
    let response = send_article(format!("{article} \n\t\r\n")).await.unwrap();
    assert_eq!(response.status(), 201, "trailing whitespace is fine");
    let mine = app.get("/api/articles?author=onevalue", None).await;
    assert_eq!(
        mine.body["articlesCount"], 1,
        "only the well-formed body wrote an article: {}",
        mine.body
    );
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_explained_in_our_words() {
    let app = spawn_app().await;
    let token = app.register("wording").await;
    let cases = [
        (
            json!({"article": {"title": "t", "description": "d", "body": "b", "tagList": "rust"}}),
            "tagList",
            "must be a list of strings",
        ),
        (
            json!({"article": {"title": "t", "description": "d", "body": "b", "tagList": ["a", 5]}}),
            "tagList",
            "must be a list of strings",
        ),
        (
            json!({"article": {"title": 5, "description": "d", "body": "b"}}),
            "title",
            "must be a string",
        ),
        (json!({"article": "text"}), "article", "must be an object"),
        (json!({}), "article", "is required"),
    ];
    for (body, field, message) in cases {
        let reply = app.post("/api/articles", Some(&token), body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        assert_eq!(reply.error(field), message, "{body}: {}", reply.body);
    }
}

#[tokio::test]
async fn head_is_answered_as_get_without_a_body() {
    let app = spawn_app().await;
    let server = socket_address(&app.address);
    for path in ["/health", "/ready", "/api/tags", "/api/articles"] {
        let get = app.get(path, None).await;
        assert_eq!(get.status, 200, "GET {path}");
        let request =
            format!("HEAD {path} HTTP/1.1\r\nHost: conduit.test\r\nConnection: close\r\n\r\n");
        let mut stream = send(server, request.as_bytes()).await;
        let (text, closed) = read_until_closed(&mut stream, ANSWER).await;
        assert!(closed, "HEAD {path}: the connection stayed open");
        assert!(text.starts_with("HTTP/1.1 200"), "HEAD {path}: {text}");
        let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
        assert_eq!(body, "", "HEAD {path} sent a body");
        let length: usize = header(head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("HEAD {path}: no Content-Length: {head}"));
        assert_eq!(length, get.body.to_string().len(), "HEAD {path}: {head}");
    }
}

#[tokio::test]
async fn a_method_a_known_path_does_not_take_is_405_with_allow() {
    let app = spawn_app().await;
    let cases = [
        (Method::DELETE, "/health", "GET, HEAD"),
        (Method::POST, "/ready", "GET, HEAD"),
        (Method::POST, "/api/user", "GET, HEAD, PUT"),
        (Method::GET, "/api/users/login", "POST"),
        (
            Method::PATCH,
            "/api/articles/some-slug",
            "GET, HEAD, PUT, DELETE",
        ),
        (Method::PUT, "/api/tags", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response.headers()["allow"].to_str().unwrap(),
            allow,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"]["method"][0].is_string(), "{body}");
    }
    let unknown = app.get("/api/no-such-thing", None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[tokio::test]
async fn expect_continue_with_a_body_over_the_cap_is_answered_413_at_once() {
    let app = spawn_app().await;
    let server = socket_address(&app.address);
    let mut stream = send(
        server,
        b"POST /api/users HTTP/1.1\r\nHost: conduit.test\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    let (head, body) = read_response(&mut stream, ANSWER)
        .await
        .expect("an answer without sending the body");
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(body["errors"]["body"][0], "is too large");

    // A body within the cap is still asked for, and served.
    let user = json!({"user": {"username": "expecting", "email": "expecting@example.org", "password": "password123"}})
        .to_string();
    let request = format!(
        "POST /api/users HTTP/1.1\r\nHost: conduit.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        user.len()
    );
    let mut stream = send(server, request.as_bytes()).await;
    let (head, _) = read_response(&mut stream, ANSWER)
        .await
        .expect("100 Continue");
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    stream.write_all(user.as_bytes()).await.unwrap();
    let (head, body) = read_response(&mut stream, ANSWER)
        .await
        .expect("the answer");
    assert!(head.starts_with("HTTP/1.1 201"), "{head} {body}");
}
