//! A catalogue of hostile requests against every endpoint: each answer is
//! a 4xx in the error shape (reads that match nothing may answer an empty
//! 200), nothing is 5xx, the server stays up, and not one row changes;
//! and made-up methods and paths do not grow the metrics.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::support::database::select_texts;

const TABLES: [&str; 8] = [
    "users",
    "sessions",
    "follows",
    "articles",
    "tags",
    "article_tags",
    "favorites",
    "comments",
];

/// A digest of every row of every table.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut conn = app.db.connect().await;
    let mut digests = Vec::new();
    for table in TABLES {
        let sql = format!(
            "SELECT '{table}:' || count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS value FROM {table} t"
        );
        digests.extend(select_texts(&mut conn, &sql).await);
    }
    digests
}

pub(crate) struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

pub(crate) fn case(
    method: Method,
    path: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
) -> Case {
    Case {
        method,
        path: path.into(),
        content_type,
        body: body.into(),
    }
}

fn catalogue(slug: &str) -> Vec<Case> {
    use Method as M;
    let json_ct = Some("application/json");
    let writes: Vec<(Method, String)> = vec![
        (M::POST, "/api/users".into()),
        (M::POST, "/api/users/login".into()),
        (M::PUT, "/api/user".into()),
        (M::POST, "/api/articles".into()),
        (M::PUT, format!("/api/articles/{slug}")),
        (M::POST, format!("/api/articles/{slug}/comments")),
    ];
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let megabyte = format!(r#"{{"user": {{"username": "{}"}}}}"#, "a".repeat(1 << 20));
    let bodies: Vec<(Option<&'static str>, Vec<u8>)> = vec![
        (json_ct, b"{\"user\": {".to_vec()),
        (json_ct, br#"{"article": {"title": "x""#.to_vec()),
        (json_ct, b"not json at all".to_vec()),
        (Some("text/plain"), br#"{"user": {}}"#.to_vec()),
        (Some("application/x-www-form-urlencoded"), b"user[email]=a@b.c".to_vec()),
        (json_ct, b"{\"user\": {\"email\": \"\xff\xfe\xfd\"}}".to_vec()),
        (json_ct, deep.into_bytes()),
        (json_ct, megabyte.into_bytes()),
        (json_ct, br#"{"user": 5, "article": "x", "comment": []}"#.to_vec()),
        (json_ct, br#"{"user": {"username": ["a"], "email": {}, "password": 12345678}, "article": {"title": 1, "description": true, "body": null, "tagList": "x"}, "comment": {"body": 42}}"#.to_vec()),
        (json_ct, br#"{"user": {"username": "x'; DROP TABLE users; --", "email": "$(rm -rf /)@x", "password": "`reboot`"}, "article": {"title": "'; DELETE FROM articles; --", "tagList": ["a\u0000b"]}, "comment": {"body": ""}}"#.to_vec()),
        (json_ct, br#"{"user": {"username": "nul\u0000name", "email": "n\u0000l@x.org", "password": "pass\u0000word", "bio": "\u0000"}, "article": {"title": "\u0000", "description": "\u0000", "body": "\u0000"}, "comment": {"body": "\u0000"}}"#.to_vec()),
        (json_ct, format!(r#"{{"user": {{"username": "{}", "email": "ü@ü", "password": "short"}}, "article": {{"tagList": [""]}}, "comment": {{}}}}"#, "名".repeat(65)).into_bytes()),
        (json_ct, br#"{"user": {"email": null, "username": null, "password": null}, "article": {"title": null, "tagList": null}, "comment": null}"#.to_vec()),
        (None, Vec::new()),
    ];
    let mut cases: Vec<Case> = writes
        .iter()
        .flat_map(|(method, path)| {
            bodies
                .iter()
                .map(move |(ct, body)| case(method.clone(), path.clone(), *ct, body.clone()))
        })
        .collect();
    for path in [
        "/api/articles?limit=-1".to_owned(),
        "/api/articles?limit=0".to_owned(),
        "/api/articles?limit=1000000".to_owned(),
        "/api/articles?limit=99999999999999999999999".to_owned(),
        "/api/articles?offset=-5".to_owned(),
        "/api/articles?offset=1e9".to_owned(),
        "/api/articles?limit=abc&offset=xyz".to_owned(),
        "/api/articles/feed?limit=-1".to_owned(),
        "/api/articles?tag=%00".to_owned(),
        "/api/profiles/nul%00name".to_owned(),
        format!("/api/articles/{slug}%00"),
        format!("/api/profiles/{}", "%E5%90%8D".repeat(70)),
        format!("/api/profiles/{}", "x".repeat(10_000)),
        "/api/profiles/x';%20DROP%20TABLE%20users;--".to_owned(),
        "/api/articles/does-not-exist".to_owned(),
        "/api/nothing".to_owned(),
        "/api/articles/x/y/z/w".to_owned(),
    ] {
        cases.push(case(M::GET, path, None, Vec::new()));
    }
    for id in [
        "abc",
        "-1",
        "1.5",
        "99999999999999999999999",
        "%00",
        "1;DROP",
    ] {
        cases.push(case(
            M::DELETE,
            format!("/api/articles/{slug}/comments/{id}"),
            None,
            Vec::new(),
        ));
    }
    for (method, path) in [
        (M::PATCH, "/api/user"),
        (M::DELETE, "/api/tags"),
        (M::PUT, "/api/articles"),
        (M::POST, "/api/tags"),
        (M::DELETE, "/api/users"),
        (M::OPTIONS, "/api/articles"),
        (M::DELETE, "/api/profiles/nobody/follow"),
        (M::POST, "/api/articles/nobody/favorite"),
        (M::DELETE, "/api/articles/nobody"),
    ] {
        cases.push(case(method, path, None, Vec::new()));
    }
    cases
}

pub(crate) fn is_error_shape(body: &Value) -> bool {
    body["errors"].as_object().is_some_and(|fields| {
        !fields.is_empty()
            && fields.values().all(|messages| {
                messages
                    .as_array()
                    .is_some_and(|m| m.iter().all(Value::is_string))
            })
    })
}

#[tokio::test]
async fn hostile_requests_get_4xx_in_the_error_shape_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.register("target").await;
    let slug = app.create_article(&token, "Target article", &["tag"]).await;
    app.post(
        &format!("/api/articles/{slug}/comments"),
        Some(&token),
        json!({"comment": {"body": "hi"}}),
    )
    .await;
    let before = snapshot(&app).await;
    let cases = catalogue(&slug);

    let mut problems = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        for token in [None, Some(token.as_str())] {
            let mut request = app
                .client
                .request(case.method.clone(), format!("{}{}", app.address, case.path))
                .body(case.body.clone());
            if let Some(content_type) = case.content_type {
                request = request.header("Content-Type", content_type);
            }
            if let Some(token) = token {
                request = request.header("Authorization", format!("Token {token}"));
            }
            let response = request.send().await.expect("answered");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let empty_read = status == 200
                && case.method == Method::GET
                && (body["articlesCount"] == 0 || body["articles"] == json!([]));
            let ok = empty_read || (status.is_client_error() && is_error_shape(&body));
            if !ok {
                let shown: String = text.chars().take(200).collect();
                problems.push(format!(
                    "#{index} {} {} (token: {}): {status} {shown}",
                    case.method,
                    &case.path[..case.path.len().min(80)],
                    token.is_some()
                ));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "{} of {} answers were wrong:\n{}",
        problems.len(),
        cases.len() * 2,
        problems.join("\n")
    );
    assert_eq!(
        app.get("/health", None).await.status,
        200,
        "the server is still up"
    );
    assert_eq!(snapshot(&app).await, before, "the database changed");
}

/// Made-up methods and paths never become metric labels: any token is a
/// valid HTTP method, and any path can be asked for, so labels taken from
/// them would grow /metrics (and the server's memory) without bound.
#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let long = "X".repeat(8_000);
    let round = |i: usize| {
        let app = &app;
        let long = long.clone();
        async move {
            let method = Method::from_bytes(format!("BREW{i}").as_bytes()).expect("a token");
            for path in [
                format!("/api/articles?x={i}"),
                format!("/random-path-{i}"),
                format!("/api/no-such-thing-{i}"),
            ] {
                app.client
                    .request(method.clone(), format!("{}{path}", app.address))
                    .send()
                    .await
                    .expect("answered");
            }
            app.client
                .get(format!("{}/unmatched-{i}/{long}", app.address))
                .send()
                .await
                .expect("answered");
            // Answered or refused at the protocol level: either way no label.
            let method = Method::from_bytes(format!("{long}{i}").as_bytes()).expect("a token");
            let _ = app
                .client
                .request(method, format!("{}/api/tags", app.address))
                .send()
                .await;
        }
    };
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();

    // /metrics counts itself from its second scrape on.
    crate::support::http::metrics(&app.client, &app.address).await;
    round(0).await;
    let after_one = crate::support::http::metrics(&app.client, &app.address).await;
    for i in 1..40 {
        round(i).await;
    }
    let after_forty = crate::support::http::metrics(&app.client, &app.address).await;

    for needle in ["BREW", "random-path", "no-such-thing", "unmatched-", "XXXX"] {
        assert!(
            !after_forty.contains(needle),
            "{needle:?} became a label:\n{}",
            after_forty
                .lines()
                .filter(|l| l.contains(needle))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Forty rounds of new methods and paths add no series to the first.
    assert_eq!(
        series(&after_forty),
        series(&after_one),
        "the metrics grew with made-up methods or paths"
    );
}
