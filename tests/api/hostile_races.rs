//! Writes racing the delete of the article they write to: 404, never 500.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::support::database::{select_texts, wait_for_a_lock_waiter};

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
