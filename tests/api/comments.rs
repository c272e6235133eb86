use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn comments_are_added_listed_newest_first_and_deleted_by_their_author() {
    let app = spawn_app().await;
    let author = app.register("poster").await;
    let commenter = app.register("commenter").await;
    let slug = app.create_article(&author, "Discuss", &[]).await;
    let path = format!("/api/articles/{slug}/comments");

    let first = app
        .post(
            &path,
            Some(&commenter),
            json!({"comment": {"body": "first"}}),
        )
        .await;
    app.post(&path, Some(&author), json!({"comment": {"body": "second"}}))
        .await;
    let listed = app.get(&path, None).await;
    let id = first.body["comment"]["id"].as_i64().unwrap();
    let forbidden = app.delete(&format!("{path}/{id}"), Some(&author)).await;
    let deleted = app.delete(&format!("{path}/{id}"), Some(&commenter)).await;
    let gone = app.delete(&format!("{path}/{id}"), Some(&commenter)).await;

    assert_eq!(first.status, 201);
    assert_eq!(first.body["comment"]["body"], "first");
    assert_eq!(first.body["comment"]["author"]["username"], "commenter");
    let bodies: Vec<&str> = listed.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["second", "first"]);
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.error("comment"), "forbidden");
    assert_eq!(deleted.status, 204);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.error("comment"), "not found");
}

#[tokio::test]
async fn comment_errors_are_in_the_error_shape() {
    let app = spawn_app().await;
    let token = app.register("critic").await;
    let slug = app.create_article(&token, "Target", &[]).await;

    let blank = app
        .post(
            &format!("/api/articles/{slug}/comments"),
            Some(&token),
            json!({"comment": {"body": ""}}),
        )
        .await;
    let unknown_article = app.get("/api/articles/nope/comments", None).await;
    let anonymous = app
        .post(
            &format!("/api/articles/{slug}/comments"),
            None,
            json!({"comment": {"body": "x"}}),
        )
        .await;
    let not_a_number = app
        .delete(&format!("/api/articles/{slug}/comments/abc"), Some(&token))
        .await;

    assert_eq!(blank.status, 422);
    assert_eq!(blank.error("body"), "can't be blank");
    assert_eq!(unknown_article.status, 404);
    assert_eq!(unknown_article.error("article"), "not found");
    assert_eq!(anonymous.status, 401);
    assert_eq!(not_a_number.status, 422);
    assert!(not_a_number.body["errors"]["path"].is_array());
}
