//! Every write rechecks its session in the transaction that writes: a
//! session that ends across any write leaves nothing of it.

use std::sync::atomic::{AtomicBool, Ordering};

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply};
use crate::hostile_sessions::login_token;
use crate::support::database::{select_texts, wait_for_a_lock_waiter};

/// What every write could change, as one text.
const EVERYTHING: &str = "SELECT concat_ws(' | ', \
     (SELECT string_agg(concat(username, ':', coalesce(bio, '-')), ',' ORDER BY id) FROM users), \
     (SELECT string_agg(concat(slug, ':', title), ',' ORDER BY id) FROM articles), \
     (SELECT string_agg(body, ',' ORDER BY id) FROM comments), \
     (SELECT count(*) FROM favorites), (SELECT count(*) FROM follows)) AS value";

/// Every authenticated write, the moment its session ends: the test holds
/// the session's row locked, lets the request run into it, then ends the
/// session and lets go. Each must answer 401 and change nothing: a write
/// that checked its session only when its headers came would go through.
#[tokio::test]
async fn every_write_rechecks_its_session_in_the_transaction_that_writes() {
    let app = spawn_app().await;
    let author = app.register("writer").await;
    app.register("other").await;
    let kept = app.create_article(&author, "Kept", &[]).await;
    let doomed = app.create_article(&author, "Doomed", &[]).await;
    let comment = app
        .post(
            &format!("/api/articles/{kept}/comments"),
            Some(&author),
            json!({"comment": {"body": "first"}}),
        )
        .await;
    let comment_id = comment.body["comment"]["id"].as_i64().expect("an id");
    for setup in [
        (Method::POST, format!("/api/articles/{kept}/favorite")),
        (Method::POST, "/api/profiles/other/follow".to_owned()),
    ] {
        assert_eq!(
            app.request(setup.0, &setup.1, Some(&author), None)
                .await
                .status,
            200
        );
    }
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PUT,
            "/api/user".into(),
            Some(json!({"user": {"bio": "changed"}})),
        ),
        (
            Method::POST,
            "/api/articles".into(),
            Some(
                json!({"article": {"title": "New", "description": "d", "body": "b", "tagList": []}}),
            ),
        ),
        (
            Method::PUT,
            format!("/api/articles/{kept}"),
            Some(json!({"article": {"title": "Renamed"}})),
        ),
        (Method::DELETE, format!("/api/articles/{doomed}"), None),
        (
            Method::POST,
            format!("/api/articles/{doomed}/favorite"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/articles/{kept}/favorite"),
            None,
        ),
        (
            Method::POST,
            format!("/api/articles/{kept}/comments"),
            Some(json!({"comment": {"body": "second"}})),
        ),
        (
            Method::DELETE,
            format!("/api/articles/{kept}/comments/{comment_id}"),
            None,
        ),
        (Method::DELETE, "/api/profiles/other/follow".into(), None),
        (Method::DELETE, "/api/user/session".into(), None),
    ];

    let mut conn = app.db.connect().await;
    let mut watcher = app.db.connect().await;
    let mut locker = app.db.connect().await;
    for (method, path, body) in writes {
        let token = login_token(&app, "writer@example.org", "password123").await;
        let before = select_texts(&mut conn, EVERYTHING).await;

        let (reply, waited) = across_the_end_of_its_session(
            &mut locker,
            &mut watcher,
            app.request(method.clone(), &path, Some(&token), body),
        )
        .await;

        assert_eq!(
            reply.status, 401,
            "{method} {path} (waited on the session: {waited}): {}",
            reply.body
        );
        assert_eq!(reply.error("token"), "is invalid");
        assert_eq!(
            select_texts(&mut conn, EVERYTHING).await,
            before,
            "{method} {path} wrote"
        );
    }
}

/// Runs `request` while the newest session's row is locked; once the
/// request waits on it (or has answered), ends that session, commits, and
/// returns the answer, and whether the request had waited.
async fn across_the_end_of_its_session(
    locker: &mut AsyncPgConnection,
    watcher: &mut AsyncPgConnection,
    request: impl std::future::Future<Output = Reply>,
) -> (Reply, bool) {
    use diesel_async::RunQueryDsl;
    const NEWEST: &str = "(SELECT max(id) FROM sessions)";
    AnsiTransactionManager::begin_transaction(locker)
        .await
        .expect("begin");
    diesel::sql_query(format!(
        "SELECT id FROM sessions WHERE id = {NEWEST} FOR UPDATE"
    ))
    .execute(locker)
    .await
    .expect("lock the session");
    let answered = AtomicBool::new(false);
    let request = async {
        let reply = request.await;
        answered.store(true, Ordering::Release);
        reply
    };
    let end_session = async {
        let waited =
            wait_for_a_lock_waiter(watcher, || AtomicBool::load(&answered, Ordering::Acquire))
                .await;
        diesel::sql_query(format!(
            "UPDATE sessions SET revoked_at = now() WHERE id = {NEWEST}"
        ))
        .execute(locker)
        .await
        .expect("end the session");
        AnsiTransactionManager::commit_transaction(locker)
            .await
            .expect("commit");
        waited
    };
    tokio::join!(request, end_session)
}
