//! Sessions under attack: a session that ends while its request's body is
//! held back writes nothing.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, TestApp};
use crate::support::database::select_texts;

/// A request whose headers and all of its body but the last byte are sent,
/// so that the server has authenticated it and waits for the rest.
struct HeldBack {
    stream: TcpStream,
    last_byte: u8,
}

impl HeldBack {
    async fn send(app: &TestApp, method: &str, path: &str, token: &str, body: &Value) -> Self {
        let body = body.to_string().into_bytes();
        let host = app.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.expect("connects");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Token {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("headers sent");
        let (last_byte, rest) = body.split_last().expect("a body");
        stream.write_all(rest).await.expect("body sent");
        stream.flush().await.expect("flushed");
        // The extractor checks the token as soon as the headers are in;
        // give a busy host ample time to do so before the session ends.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Self {
            stream,
            last_byte: *last_byte,
        }
    }

    /// Sends the last byte; the status and the JSON body of the answer.
    async fn finish(mut self) -> (u16, Value) {
        self.stream
            .write_all(&[self.last_byte])
            .await
            .expect("last byte sent");
        let mut answer = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            self.stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered within 30 s")
        .expect("read the answer");
        let answer = String::from_utf8_lossy(&answer);
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {answer}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| serde_json::from_str(body).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        (status, body)
    }
}

pub(crate) async fn login_token(app: &TestApp, email: &str, password: &str) -> String {
    let reply = app.login(email, password).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["user"]["token"].as_str().unwrap().to_owned()
}

/// A thief holding a stolen token starts a password change and holds back
/// its last byte; the owner changes the password (ending every other
/// session); the thief's change, finished afterwards, is refused and
/// changes nothing.
#[tokio::test]
async fn a_password_change_whose_session_ended_while_its_body_was_held_back_is_refused() {
    let app = spawn_app().await;
    let owner = app.register("victim").await;
    let stolen = login_token(&app, "victim@example.org", "password123").await;

    let thief = HeldBack::send(
        &app,
        "PUT",
        "/api/user",
        &stolen,
        &json!({"user": {"password": "the-thiefs-password"}}),
    )
    .await;
    let changed = app
        .put(
            "/api/user",
            Some(&owner),
            json!({"user": {"password": "the-owners-password"}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let (status, body) = thief.finish().await;

    assert_eq!(status, 401, "the thief's change went through: {body}");
    assert_eq!(body["errors"]["token"][0], "is invalid", "{body}");
    assert_eq!(app.get("/api/user", Some(&owner)).await.status, 200);
    assert_eq!(
        app.login("victim@example.org", "the-thiefs-password")
            .await
            .status,
        401
    );
    assert_eq!(
        app.login("victim@example.org", "the-owners-password")
            .await
            .status,
        200
    );
}

/// An article whose body was still on its way when its session logged out
/// is refused, and not written.
#[tokio::test]
async fn an_article_finished_after_its_session_logged_out_is_refused() {
    let app = spawn_app().await;
    let token = app.register("leaver").await;

    let held = HeldBack::send(
        &app,
        "POST",
        "/api/articles",
        &token,
        &json!({"article": {"title": "Too late", "description": "d", "body": "b", "tagList": []}}),
    )
    .await;
    assert_eq!(
        app.delete("/api/user/session", Some(&token)).await.status,
        204
    );
    let (status, body) = held.finish().await;

    assert_eq!(status, 401, "written after the logout: {body}");
    let mut conn = app.db.connect().await;
    assert_eq!(
        select_texts(
            &mut conn,
            "SELECT count(*)::text AS value FROM articles WHERE title = 'Too late'"
        )
        .await,
        ["0"]
    );
}
