//! A catalogue of hostile requests against every endpoint: each answer is
//! a 4xx in the error shape (reads that match nothing may answer an empty
//! 200), nothing is 5xx, the server stays up, and not one row changes.

use reqwest::Method;
use serde_json::{json, Value};

use crate::database::{select_texts, wait_for_a_lock_waiter};
use crate::helpers::{spawn_app, TestApp};

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

struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn case(
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

fn is_error_shape(body: &Value) -> bool {
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
    crate::http::metrics(&app.client, &app.address).await;
    round(0).await;
    let after_one = crate::http::metrics(&app.client, &app.address).await;
    for i in 1..40 {
        round(i).await;
    }
    let after_forty = crate::http::metrics(&app.client, &app.address).await;

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

/// Sends `method path` with `body` while another transaction has deleted
/// the article but not yet committed: the request reads the article (the
/// delete is not visible yet), then its write waits for the deleting
/// transaction's row lock, which is released by the commit. That is the
/// race of a comment, a favorite or an update against a DELETE, made
/// deterministic.
async fn during_a_delete(
    app: &TestApp,
    slug: &str,
    method: Method,
    path: String,
    token: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut deleter = app.db.connect().await;
    let mut watcher = app.db.connect().await;
    let client = app.client.clone();
    let url = format!("{}{path}", app.address);
    let token = token.to_owned();
    let request = deleter
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query("DELETE FROM articles WHERE slug = $1")
                .bind::<diesel::sql_types::Text, _>(slug)
                .execute(conn)
                .await?;
            let request = tokio::spawn(async move {
                let mut request = client
                    .request(method, url)
                    .header("Authorization", format!("Token {token}"));
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await.expect("answered");
                let status = response.status();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            });
            // Wait until the request's write is blocked on the deleted row.
            let blocked = wait_for_a_lock_waiter(&mut watcher, || request.is_finished()).await;
            assert!(blocked, "the request never waited for the deleted row");
            Ok(request)
        })
        .await
        .expect("the delete commits");
    request.await.expect("the request task")
}

#[tokio::test]
async fn writes_racing_a_delete_of_their_article_get_404_not_500() {
    let app = spawn_app().await;
    let author = app.register("author").await;
    let reader = app.register("reader").await;
    let writes: [(Method, &str, Option<Value>, &str); 3] = [
        (
            Method::POST,
            "comments",
            Some(json!({"comment": {"body": "first!"}})),
            "reader",
        ),
        (Method::POST, "favorite", None, "reader"),
        (
            Method::PUT,
            "",
            Some(json!({"article": {"body": "edited"}})),
            "author",
        ),
    ];
    for (method, tail, body, who) in writes {
        let slug = app
            .create_article(&author, &format!("Doomed {tail}"), &["t"])
            .await;
        let path = if tail.is_empty() {
            format!("/api/articles/{slug}")
        } else {
            format!("/api/articles/{slug}/{tail}")
        };
        let token = if who == "author" { &author } else { &reader };
        let (status, reply) =
            during_a_delete(&app, &slug, method.clone(), path.clone(), token, body).await;
        assert_eq!(status, 404, "{method} {path}: {reply}");
        assert_eq!(reply["errors"]["article"][0], "not found", "{reply}");
    }
    let mut conn = app.db.connect().await;
    let left = select_texts(
        &mut conn,
        "SELECT format('%s comments, %s favorites, %s articles', \
         (SELECT count(*) FROM comments), (SELECT count(*) FROM favorites), \
         (SELECT count(*) FROM articles a JOIN users u ON u.id = a.author_id \
          WHERE u.username = 'author')) AS value",
    )
    .await;
    assert_eq!(
        left,
        ["0 comments, 0 favorites, 0 articles"],
        "nothing half-written is left behind"
    );
}

/// Parallel guesses cannot outrun the login throttle: an attempt counts
/// from the moment it starts, not after its (slow) hash, so of 60 wrong
/// passwords sent at once exactly the budget (10 by default) is checked.
#[tokio::test]
async fn parallel_wrong_passwords_are_throttled_while_in_flight() {
    let app = spawn_app().await;
    app.register("victim").await;
    let guesses = (0..60).map(|i| {
        let client = app.client.clone();
        let url = format!("{}/api/users/login", app.address);
        async move {
            client
                .post(url)
                .json(&json!({"user": {"email": "victim@example.org", "password": format!("guess-{i}-wrong")}}))
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!((count(401), count(429)), (10, 50), "statuses: {statuses:?}");
}

/// Every list has a bound: a page of comments (100 unless asked for
/// fewer), at most 100 tags, and an offset of at most 10,000, so that no
/// request's answer or work grows with the data.
#[tokio::test]
async fn every_list_is_bounded() {
    let app = spawn_app().await;
    let token = app.register("prolific").await;
    let slug = app.create_article(&token, "Busy thread", &["hot"]).await;
    let comments_path = format!("/api/articles/{slug}/comments");
    for i in 0..105 {
        let reply = app
            .post(
                &comments_path,
                Some(&token),
                json!({"comment": {"body": format!("comment {i}")}}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }

    let first = app.get(&comments_path, None).await;
    assert_eq!(first.status, 200);
    let first = first.body["comments"].as_array().expect("a list").clone();
    assert_eq!(first.len(), 100, "the default page");
    assert_eq!(first[0]["body"], "comment 104", "newest first");
    let rest = app
        .get(&format!("{comments_path}?limit=10&offset=100"), None)
        .await;
    let rest: Vec<&str> = rest.body["comments"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(
        rest,
        [
            "comment 4",
            "comment 3",
            "comment 2",
            "comment 1",
            "comment 0"
        ]
    );

    for path in [
        format!("{comments_path}?limit=101"),
        format!("{comments_path}?offset=10001"),
        "/api/articles?offset=1000000000".to_owned(),
        "/api/articles/feed?offset=10001".to_owned(),
    ] {
        let reply = app.get(&path, Some(&token)).await;
        assert_eq!(reply.status, 422, "{path}: {}", reply.body);
        assert!(is_error_shape(&reply.body), "{path}: {}", reply.body);
    }

    // 11 articles of 10 new tags each, and "hot" on three of them.
    for a in 0..11 {
        let mut tags: Vec<String> = (0..10).map(|t| format!("tag-{a}-{t}")).collect();
        if a < 2 {
            tags.push("hot".to_owned());
        }
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        app.create_article(&token, &format!("Tagged {a}"), &tags)
            .await;
    }
    let tags = app.get("/api/tags", None).await;
    let tags = tags.body["tags"].as_array().expect("a list");
    assert_eq!(tags.len(), 100, "capped");
    assert_eq!(tags[0], "hot", "the most used first");
}

/// One name, one account: usernames and emails are unique whatever their
/// case and Unicode spelling (NFC), and names no profile URL could reach
/// (`.`, `..`) are refused.
#[tokio::test]
async fn names_are_unique_whatever_their_case_or_spelling_and_never_path_hostile() {
    let app = spawn_app().await;
    let register = |username: &str, email: &str| {
        app.post(
            "/api/users",
            None,
            json!({"user": {"username": username, "email": email, "password": "password123"}}),
        )
    };
    assert_eq!(register("Casey", "casey@example.org").await.status, 201);
    let again = register("casey", "other@example.org").await;
    assert_eq!(
        (again.status.as_u16(), again.error("username")),
        (409, "has already been taken")
    );
    let again = register("someone", "CASEY@Example.org").await;
    assert_eq!(
        (again.status.as_u16(), again.error("email")),
        (409, "has already been taken")
    );

    let composed = register("Zo\u{e9}", "zoe@example.org").await;
    assert_eq!(composed.status, 201, "{}", composed.body);
    let decomposed = register("Zoe\u{301}", "zoe2@example.org").await;
    assert_eq!(decomposed.status, 409, "{}", decomposed.body);
    let spelled = register("Jose\u{301}", "jose@example.org").await;
    assert_eq!(
        spelled.body["user"]["username"], "Jos\u{e9}",
        "stored in NFC"
    );

    for hostile in [".", "..", "..."] {
        let reply = register(hostile, &format!("dots{}@example.org", hostile.len())).await;
        assert_eq!(reply.status, 422, "{hostile}: {}", reply.body);
        assert!(is_error_shape(&reply.body));
    }

    let token = app.register("renamer").await;
    let rename = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "CASEY"}}),
        )
        .await;
    assert_eq!(rename.status, 422, "{}", rename.body);
}

/// Behind a trusted proxy every client has its own login budget (the
/// address the proxy reports); from an untrusted peer the same header is
/// ignored, so a client cannot escape its budget by writing it.
#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    async fn fail_logins(app: &TestApp, forwarded_for: &str, count: usize, tag: &str) -> Vec<u16> {
        let mut statuses = Vec::new();
        for i in 0..count {
            let status = app
                .client
                .post(format!("{}/api/users/login", app.address))
                .header("X-Forwarded-For", forwarded_for)
                .json(&json!({"user": {"email": format!("nobody-{tag}-{i}@example.org"), "password": "wrong-password"}}))
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16();
            statuses.push(status);
        }
        statuses
    }

    // 2 failures per account, so 20 per address.
    let behind_proxy = crate::helpers::spawn_app_with(&[
        "--trusted-proxies",
        "127.0.0.0/8",
        "--login-max-failures",
        "2",
    ])
    .await;
    assert_eq!(
        fail_logins(&behind_proxy, "203.0.113.1", 20, "a").await,
        [401; 20]
    );
    assert_eq!(
        fail_logins(&behind_proxy, "203.0.113.1", 1, "b").await,
        [429]
    );
    assert_eq!(
        fail_logins(&behind_proxy, "203.0.113.2", 1, "c").await,
        [401],
        "another client behind the same proxy is not blocked"
    );

    let direct = crate::helpers::spawn_app_with(&["--login-max-failures", "2"]).await;
    assert_eq!(
        fail_logins(&direct, "203.0.113.1", 20, "a").await,
        [401; 20]
    );
    assert_eq!(
        fail_logins(&direct, "203.0.113.2", 1, "c").await,
        [429],
        "a forged header from an untrusted peer changes nothing"
    );
}

// ---- Throttling shared in PostgreSQL: strict per (account, address),
// backoff per account and per address, registrations per address ----

/// A server that takes the client's address from X-Forwarded-For (the
/// tests' connections come from 127.0.0.1, listed as a trusted proxy), so
/// that one test can speak from many addresses.
async fn behind_a_proxy(flags: &[&str]) -> TestApp {
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
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// A login from `address`: its status and `Retry-After` (seconds), if any.
async fn login_from(
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
async fn register_from(app: &TestApp, address: &str, name: &str) -> (u16, Option<u64>, Value) {
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
async fn hammer(app: &TestApp, addresses: &[String], email: &str, count: usize) -> Vec<u16> {
    let attempts = addresses.iter().flat_map(|address| {
        (0..count).map(move |i| async move {
            login_from(app, address, email, &format!("guess-{i}-wrong"))
                .await
                .0
        })
    });
    futures_util::future::join_all(attempts).await
}

/// Per (account, address) the budget is strict: after it, that address is
/// refused for that account until the window ends, right password or not.
/// But the account is not locked: its owner, from an address of their
/// own, gets in at once.
#[tokio::test]
async fn failures_block_the_account_from_that_address_only() {
    let app = behind_a_proxy(&["--login-max-failures", "3"]).await;
    app.register("owner").await;
    for _ in 0..3 {
        let (status, _) =
            login_from(&app, "203.0.113.66", "owner@example.org", "wrong-password").await;
        assert_eq!(status, 401);
    }
    let (status, retry_after) =
        login_from(&app, "203.0.113.66", "owner@example.org", "password123").await;
    assert_eq!(status, 429, "strict, even with the right password");
    let retry_after = retry_after.expect("Retry-After");
    assert!(
        retry_after > 60 && retry_after <= 15 * 60,
        "until the window ends, not a backoff: {retry_after}"
    );

    let (status, _) = login_from(&app, "198.51.100.7", "owner@example.org", "password123").await;
    assert_eq!(status, 200, "the owner from their own address");
}

/// An attacker guessing from many addresses at once cannot keep the owner
/// out: from a fresh address the owner gets in at once; after a typo they
/// wait one backoff (at most CONDUIT_LOGIN_MAX_BACKOFF), even while the
/// attacker keeps guessing; the attacker's addresses are each held to the
/// strict budget.
#[tokio::test]
async fn an_attacker_elsewhere_cannot_keep_the_owner_out() {
    let app = behind_a_proxy(&["--login-max-failures", "3", "--login-max-backoff", "2s"]).await;
    app.register("owner").await;
    let attackers: Vec<String> = (1..=8).map(|i| format!("203.0.113.{i}")).collect();

    let statuses = hammer(&app, &attackers, "owner@example.org", 6).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        checked <= attackers.len() * 3,
        "at most the strict budget per address: {checked} of {statuses:?}"
    );

    let (status, _) = login_from(&app, "198.51.100.7", "owner@example.org", "password123").await;
    assert_eq!(status, 200, "the owner, first try from their address");

    // A typo from another address of the owner's: then one backoff.
    let (status, _) = login_from(&app, "198.51.100.8", "owner@example.org", "typo-password").await;
    assert_eq!(status, 401);
    let (status, retry_after) =
        login_from(&app, "198.51.100.8", "owner@example.org", "password123").await;
    let wait = match status {
        200 => 0,
        429 => retry_after.expect("Retry-After"),
        other => panic!("answered {other}"),
    };
    assert!(wait <= 2, "at most CONDUIT_LOGIN_MAX_BACKOFF: {wait}");
    if wait > 0 {
        // The attacker keeps guessing meanwhile, from every address.
        let guesses = hammer(&app, &attackers, "owner@example.org", 2);
        let sleep = tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100));
        let (statuses, ()) = tokio::join!(guesses, sleep);
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "{statuses:?}"
        );
        let (status, _) =
            login_from(&app, "198.51.100.8", "owner@example.org", "password123").await;
        assert_eq!(status, 200, "after one Retry-After");
    }
}

/// Beyond an address's budget (ten times an account's), the address is
/// not locked out either: it may try again after a delay that doubles
/// with each attempt, up to CONDUIT_LOGIN_MAX_BACKOFF.
///
/// Each round sends two attempts at once: one is admitted (and starts the
/// next delay when it is counted, before it hashes), the other finds that
/// delay running. Sent one after the other, the second would meet a delay
/// already spent by the first's hashing on a busy host.
#[tokio::test]
async fn an_address_beyond_its_budget_waits_a_growing_retry_after() {
    let app = behind_a_proxy(&["--login-max-failures", "1", "--login-max-backoff", "2s"]).await;
    let address = "203.0.113.50";
    let mut accounts = (0..).map(|i| format!("nobody-{i}@example.org"));
    let mut next = || accounts.next().expect("endless");
    for _ in 0..9 {
        assert_eq!(
            login_from(&app, address, &next(), "wrong-password").await.0,
            401
        );
    }
    let mut waits = Vec::new();
    for round in 0..4 {
        let (first, second) = (next(), next());
        let (a, b) = tokio::join!(
            login_from(&app, address, &first, "wrong-password"),
            login_from(&app, address, &second, "wrong-password"),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [401, 429],
            "round {round}: one let through, one told to wait"
        );
        let refused = if a.0 == 429 { a } else { b };
        let wait = refused.1.expect("Retry-After");
        waits.push(wait);
        tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await;
    }
    assert_eq!(waits[0], 1, "the first wait: {waits:?}");
    assert!(
        waits.iter().all(|w| (1..=2).contains(w)),
        "capped: {waits:?}"
    );
    assert!(waits.contains(&2), "doubled: {waits:?}");
    assert_eq!(
        login_from(&app, "203.0.113.51", &next(), "wrong-password")
            .await
            .0,
        401,
        "another address is not slowed"
    );
}

/// Wrong passwords sent at once from one address to many accounts are
/// counted while in flight against the address too: of 40 parallel
/// guesses with an address budget of 20 (2 per account), at most the 20
/// and the one after the first second's backoff are checked.
#[tokio::test]
async fn parallel_guesses_across_accounts_are_counted_per_address() {
    let app = behind_a_proxy(&["--login-max-failures", "2"]).await;
    let guesses = (0..40).map(|i| {
        let app = &app;
        async move {
            login_from(
                app,
                "203.0.113.77",
                &format!("spray-{i}@example.org"),
                "wrong-password",
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!(count(401) + count(429), 40, "{statuses:?}");
    assert!(
        (20..=21).contains(&count(401)),
        "the budget, and at most one more after a second: {statuses:?}"
    );
}

/// Registrations are throttled per address (CONDUIT_REGISTRATIONS_PER_ADDRESS,
/// then backoff): a flood from one address cannot create accounts without
/// bound, other addresses are not slowed, and a registration refused
/// before the hash (a taken name) is not counted.
#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let app = behind_a_proxy(&["--registrations-per-address", "3"]).await;
    for i in 0..3 {
        let (status, _, body) = register_from(&app, "203.0.113.9", &format!("flood{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry_after, body) = register_from(&app, "203.0.113.9", "flood3").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{retry_after:?}"
    );
    assert!(is_error_shape(&body), "{body}");
    assert_eq!(
        body["errors"]["user"][0],
        "too many registrations from this address; retry later"
    );
    assert_eq!(
        register_from(&app, "203.0.113.9", "flood0").await.0,
        409,
        "a taken name is answered before the throttle"
    );
    assert_eq!(
        register_from(&app, "198.51.100.9", "elsewhere").await.0,
        201
    );
}

/// Counters whose window has ended are deleted by the server itself (soon
/// after boot, then periodically, in batches); live ones are kept, so a restart
/// does not reset a budget.
#[tokio::test]
async fn ended_throttle_windows_are_deleted_and_live_ones_kept() {
    use diesel_async::RunQueryDsl;
    let app = crate::helpers::spawn_app_with(&["--login-max-failures", "2"]).await;
    app.register("target").await;
    for _ in 0..2 {
        assert_eq!(
            app.login("target@example.org", "wrong-password")
                .await
                .status,
            401
        );
    }
    let db = app.stop().await;
    let mut conn = db.connect().await;
    diesel::sql_query(
        "INSERT INTO throttle_counters (key, attempts, window_ends_at, next_at) \
         SELECT 'login-address:192.0.2.' || i, 5, now() - interval '1 minute', now() \
         FROM generate_series(1, 2500) AS i",
    )
    .execute(&mut conn)
    .await
    .expect("ended windows");
    const ENDED: &str = "SELECT count(*)::text AS value FROM throttle_counters \
                         WHERE window_ends_at <= now()";
    assert_eq!(select_texts(&mut conn, ENDED).await, ["2500"]);

    let restarted = crate::helpers::spawn_app_on(db, &["--login-max-failures", "2"]).await;
    // The first round runs about a second after boot, off /ready's path.
    assert!(
        crate::helpers::texts_become(&mut conn, ENDED, &["0"]).await,
        "all purged, in batches"
    );
    assert_eq!(
        restarted
            .login("target@example.org", "password123")
            .await
            .status,
        429,
        "the live count survived the restart"
    );
}

/// Every spelling of an email that finds the account counts against its
/// one budget: PostgreSQL's `lower()` maps `İ` (U+0130) to `i`, Rust's
/// `to_lowercase` does not, so keys built from the email itself gave the
/// variant a budget of its own while it logged into the same account.
#[tokio::test]
async fn every_spelling_of_an_email_shares_the_accounts_budget() {
    let app = behind_a_proxy(&["--login-max-failures", "3"]).await;
    app.register("alice").await;
    let variant = "al\u{130}ce@example.org";
    let (status, _) = login_from(&app, "198.51.100.9", variant, "password123").await;
    if status != 200 {
        // This database's collation does not map İ to i: the variant names
        // nobody, and there is nothing to share.
        assert_eq!(status, 401);
        return;
    }
    for _ in 0..3 {
        let (status, _) =
            login_from(&app, "203.0.113.5", "alice@example.org", "wrong-password").await;
        assert_eq!(status, 401);
    }
    let (status, _) = login_from(&app, "203.0.113.5", variant, "wrong-password").await;
    assert_eq!(
        status, 429,
        "the variant is the same account from the same address"
    );
    let (status, _) = login_from(&app, "203.0.113.5", variant, "password123").await;
    assert_eq!(status, 429);
}

/// Many logins of one account from one address at once, right and wrong,
/// within the budget: none is answered 500 or 429. Counting them took the
/// same rows' locks in different orders (deadlocks answered 500), and an
/// attempt that waited on a row's lock compared its own start time with
/// a later attempt's (429 with `Retry-After: 1`, far below the budget).
#[tokio::test]
async fn concurrent_logins_of_one_account_get_neither_500_nor_429() {
    let app = behind_a_proxy(&["--login-max-failures", "1000", "--hash-queue-limit", "1000"]).await;
    app.register("shared").await;
    let attempts = (0..90).map(|i| {
        let app = &app;
        async move {
            let password = if i % 3 == 0 {
                "wrong-password"
            } else {
                "password123"
            };
            login_from(app, "203.0.113.9", "shared@example.org", password)
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    // 503 is the test server's small pool (4) giving up under this burst on
    // a busy host: overload, answered as such. A deadlock is a 500; a
    // false refusal a 429.
    assert!(
        statuses.iter().all(|s| [200, 401, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&200) && statuses.contains(&401),
        "{statuses:?}"
    );
}

/// Logins the (account, address) pair refuses check no password: they
/// do not spend the address's budget, which everyone behind the address
/// (a NAT, an office) shares. An account retrying on its own, or its
/// logins in flight, must not slow down its neighbours.
#[tokio::test]
async fn logins_refused_for_one_account_do_not_spend_the_shared_address() {
    let app = behind_a_proxy(&["--login-max-failures", "3"]).await;
    app.register("retrier").await;
    app.register("neighbour").await;
    let shared = "203.0.113.70";
    for _ in 0..3 {
        let (status, _) = login_from(&app, shared, "retrier@example.org", "wrong-password").await;
        assert_eq!(status, 401);
    }
    // Ten times the account's budget is the address's (30 here).
    for _ in 0..40 {
        let (status, _) = login_from(&app, shared, "retrier@example.org", "password123").await;
        assert_eq!(status, 429);
    }

    let (status, retry_after) =
        login_from(&app, shared, "neighbour@example.org", "password123").await;

    assert_eq!(status, 200, "the neighbour waited {retry_after:?}");
}
