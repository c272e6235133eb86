//! The protocol as a hostile or careless client speaks it: bodies that are
//! not JSON, or more than one JSON value, or sent too slowly; methods a
//! path does not take; `Expect: 100-continue`; more connections than an
//! address may hold. Raw sockets where a client library would hide it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use crate::raw_http::{
    connect_from, half_sent_body, header, post_json, read_response, read_until_closed, send,
    socket_address,
};

const ANSWER: Duration = Duration::from_secs(10);

/// POSTs `body` with the given Content-Type (None: no header at all).
async fn post_raw(
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

#[tokio::test]
async fn a_body_sent_too_slowly_is_answered_408_and_its_connection_closed() {
    // The default deadline (10 s): a server without one holds the
    // connection for as long as the client likes.
    let app = spawn_app().await;
    let server = socket_address(&app.address);
    let started = Instant::now();
    let mut stream = send(
        server,
        &half_sent_body("/api/users/login", 100, "{\"user\":"),
    )
    .await;
    let (text, closed) = read_until_closed(&mut stream, Duration::from_secs(60)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("was not received in time"), "{text}");
    assert!(closed, "the connection stayed open after the 408");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "answered before the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_address_holding_its_share_of_connections_is_refused_while_others_are_served() {
    // The held bodies outlast the test, however slow the host.
    let app = spawn_app_with(&[
        "--body-timeout",
        "5m",
        "--max-connections-per-address",
        "64",
    ])
    .await;
    let server = socket_address(&app.address);
    let crowded: IpAddr = "127.0.0.1".parse().unwrap();
    // Its share, each held by a body still on its way.
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut stream = connect_from(crowded, server).await;
        stream
            .write_all(&half_sent_body("/api/users/login", 100, "{"))
            .await
            .unwrap();
        held.push(stream);
    }
    // The connections above may still be on their way to being admitted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        // A request at once: if admitted after all, it is answered at
        // once too, and the next try follows.
        let mut extra = connect_from(crowded, server).await;
        let _ = extra
            .write_all(b"GET /health HTTP/1.1\r\nHost: conduit.test\r\nConnection: close\r\n\r\n")
            .await;
        let (text, closed) = read_until_closed(&mut extra, ANSWER).await;
        if text.starts_with("HTTP/1.1 429") || Instant::now() > deadline {
            break (text, closed);
        }
    };
    assert!(refused.0.starts_with("HTTP/1.1 429"), "{refused:?}");
    assert!(refused.1, "a refused connection is closed");
    let body = refused.0.split_once("\r\n\r\n").unwrap().1;
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert!(body["errors"]["connection"][0].is_string(), "{body}");

    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2".parse().unwrap(), server).await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: conduit.test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut other, ANSWER).await.expect("served");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // A place given back is a place again.
    held.truncate(60);
    let deadline = Instant::now() + ANSWER;
    loop {
        let mut again = connect_from(crowded, server).await;
        again
            .write_all(&post_json("/api/users/login", "{}"))
            .await
            .unwrap();
        let (head, _) = read_response(&mut again, ANSWER).await.unwrap_or_default();
        if head.starts_with("HTTP/1.1 422") {
            break;
        }
        assert!(Instant::now() < deadline, "no place came back: {head}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `bytes` one at a time, a second apart, until the server closes.
fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, bytes: &'static [u8]) {
    tokio::spawn(async move {
        for byte in bytes.iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Reads until the server closes, for at most `limit`: whether it did.
async fn closed_within(reader: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_second_request_head_sent_slowly_is_cut_off_like_the_first() {
    // actix-http times only the first head of a connection.
    let app = spawn_app().await;
    let mut stream = send(
        socket_address(&app.address),
        b"GET /health HTTP/1.1\r\nHost: conduit\r\n\r\n",
    )
    .await;
    let (head, _) = read_response(&mut stream, ANSWER)
        .await
        .expect("the answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /api/tags HTTP/1.1\r\nHost: conduit\r\n")
        .await
        .expect("send");
    let started = Instant::now();
    trickle(writer, b"X-Slow: yes\r\n");

    assert!(
        closed_within(&mut reader, Duration::from_secs(30)).await,
        "a second head trickled for 30 s kept its connection"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_no_route_reads_does_not_keep_its_connection_open() {
    let app = spawn_app().await;
    let mut stream = send(
        socket_address(&app.address),
        b"POST /api/articles/some-slug/favorite HTTP/1.1\r\nHost: conduit\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
    )
    .await;
    let (head, _) = read_response(&mut stream, ANSWER)
        .await
        .expect("the answer");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let (mut reader, writer) = stream.into_split();
    trickle(writer, b"1\r\n \r\n");

    assert!(
        closed_within(&mut reader, Duration::from_secs(30)).await,
        "a body trickled to a route that answered without it kept its connection for 30 s"
    );
}

#[tokio::test]
async fn a_client_that_pipelines_requests_and_reads_no_answer_is_cut_off() {
    // Without a deadline on writes, the answers were buffered for as long
    // as the client kept the connection (megabytes each).
    let app = spawn_app().await;
    let stream = tokio::net::TcpStream::connect(socket_address(&app.address))
        .await
        .expect("connect");
    let (_reader, mut writer) = stream.into_split();
    let requests = b"GET /api/tags HTTP/1.1\r\nHost: conduit\r\n\r\n".repeat(2_000);
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        loop {
            if writer.write_all(&requests).await.is_err() {
                return;
            }
        }
    });

    let cut_off = tokio::time::timeout(Duration::from_secs(60), sending).await;

    assert!(
        cut_off.is_ok(),
        "the connection was still taking requests after 60 s"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = post_raw(&app, "/api/users/login", Some("application/json"), "{}").await;
    assert_eq!(status, 422, "others are still served");
}
