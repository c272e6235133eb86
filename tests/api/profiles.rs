use crate::helpers::spawn_app;

#[tokio::test]
async fn profiles_show_whether_the_viewer_follows() {
    let app = spawn_app().await;
    let viewer = app.register("viewer").await;
    app.register("author").await;

    let anonymous = app.get("/api/profiles/author", None).await;
    let followed = app
        .post(
            "/api/profiles/author/follow",
            Some(&viewer),
            serde_json::json!({}),
        )
        .await;
    let seen = app.get("/api/profiles/author", Some(&viewer)).await;
    let unfollowed = app
        .delete("/api/profiles/author/follow", Some(&viewer))
        .await;
    let seen_after = app.get("/api/profiles/author", Some(&viewer)).await;

    assert_eq!(anonymous.status, 200);
    assert_eq!(anonymous.body["profile"]["username"], "author");
    assert_eq!(anonymous.body["profile"]["following"], false);
    assert_eq!(followed.status, 200);
    assert_eq!(followed.body["profile"]["following"], true);
    assert_eq!(seen.body["profile"]["following"], true);
    assert_eq!(unfollowed.body["profile"]["following"], false);
    assert_eq!(seen_after.body["profile"]["following"], false);
}

#[tokio::test]
async fn profile_errors_check_the_token_before_the_username() {
    let app = spawn_app().await;
    let token = app.register("someone").await;

    let unknown = app.get("/api/profiles/nobody", None).await;
    let follow_anonymous = app
        .post("/api/profiles/nobody/follow", None, serde_json::json!({}))
        .await;
    let follow_unknown = app
        .post(
            "/api/profiles/nobody/follow",
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    let follow_self = app
        .post(
            "/api/profiles/someone/follow",
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    let bad_token = app
        .get("/api/profiles/someone", Some(&"y".repeat(43)))
        .await;

    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error("profile"), "not found");
    assert_eq!(follow_anonymous.status, 401, "401 before 404");
    assert_eq!(follow_anonymous.error("token"), "is missing");
    assert_eq!(follow_unknown.status, 404);
    assert_eq!(follow_self.status, 422);
    assert_eq!(
        bad_token.status, 401,
        "optional auth still rejects a bad token"
    );
}
