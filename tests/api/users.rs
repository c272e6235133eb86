//! Registration, login and the current user.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::support::database::select_texts;

#[tokio::test]
async fn registering_returns_201_with_the_user_and_a_token() {
    let app = spawn_app().await;

    let reply = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "alice", "email": "alice@example.org", "password": "password123", "extra": 1}}),
        )
        .await;

    assert_eq!(reply.status, 201);
    let user = &reply.body["user"];
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.org");
    assert_eq!(user["bio"], json!(null));
    assert_eq!(user["image"], json!(null));
    assert!(user["token"].as_str().unwrap().len() >= 43);
}

#[tokio::test]
async fn a_taken_username_or_email_is_409_whatever_the_email_case() {
    let app = spawn_app().await;
    app.register("alice").await;

    let same_name = app
        .post("/api/users", None, json!({"user": {"username": "alice", "email": "other@example.org", "password": "password123"}}))
        .await;
    let same_email = app
        .post("/api/users", None, json!({"user": {"username": "alice2", "email": "ALICE@Example.org", "password": "password123"}}))
        .await;

    assert_eq!(same_name.status, 409);
    assert_eq!(same_name.error("username"), "has already been taken");
    assert_eq!(same_email.status, 409);
    assert_eq!(same_email.error("email"), "has already been taken");
}

#[tokio::test]
async fn racing_registrations_of_one_username_give_one_201_and_409s_never_a_500() {
    let app = spawn_app().await;

    let attempts = (0..6).map(|i| {
        app.post(
            "/api/users",
            None,
            json!({"user": {"username": "racer", "email": format!("racer{i}@example.org"), "password": "password123"}}),
        )
    });
    let replies = futures_util::future::join_all(attempts).await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );
    let mut conn = app.db.connect().await;
    let sessions = select_texts(&mut conn, "SELECT count(*)::text AS value FROM sessions").await;
    assert_eq!(sessions, ["1"], "no session without its account");
}

#[tokio::test]
async fn registration_names_every_invalid_field() {
    let app = spawn_app().await;

    let blank = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "", "email": "", "password": ""}}),
        )
        .await;
    let short = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "bob", "email": "bob@example.org", "password": "short7c"}}),
        )
        .await;
    let missing = app.post("/api/users", None, json!({"user": {}})).await;
    let bad_email = app
        .post("/api/users", None, json!({"user": {"username": "bob", "email": "not-an-email", "password": "password123"}}))
        .await;

    assert_eq!(blank.status, 422);
    assert_eq!(blank.error("username"), "can't be blank");
    assert_eq!(blank.error("email"), "can't be blank");
    assert_eq!(blank.error("password"), "can't be blank");
    assert_eq!(short.status, 422);
    assert!(short.error("password").contains("minimum is 8"));
    assert_eq!(missing.status, 422);
    assert_eq!(missing.error("username"), "can't be blank");
    assert_eq!(bad_email.status, 422);
    assert_eq!(bad_email.error("email"), "is invalid");
}

#[tokio::test]
async fn login_accepts_the_right_password_and_refuses_others_alike() {
    let app = spawn_app().await;
    app.register("carol").await;

    let ok = app.login("Carol@Example.org", "password123").await;
    let wrong = app.login("carol@example.org", "password124").await;
    let unknown = app.login("nobody@example.org", "password123").await;
    let blank = app.login("", "").await;

    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["user"]["username"], "carol");
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error("credentials"), "invalid");
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.body, wrong.body,
        "no hint whether the account exists"
    );
    assert_eq!(blank.status, 422);
    assert_eq!(blank.error("email"), "can't be blank");
    assert_eq!(blank.error("password"), "can't be blank");
}

#[tokio::test]
async fn the_current_user_needs_a_valid_token_and_echoes_it() {
    let app = spawn_app().await;
    let token = app.register("dave").await;

    let missing = app.get("/api/user", None).await;
    let invalid = app.get("/api/user", Some("x".repeat(43).as_str())).await;
    let malformed = app.get("/api/user", Some("not a token")).await;
    let ok = app.get("/api/user", Some(&token)).await;
    let bearer = app
        .client
        .get(format!("{}/api/user", app.address))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();

    assert_eq!(missing.status, 401);
    assert_eq!(missing.error("token"), "is missing");
    assert_eq!(invalid.status, 401);
    assert_eq!(invalid.error("token"), "is invalid");
    assert_eq!(malformed.status, 401);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["user"]["token"], token.as_str());
    assert_eq!(bearer.status(), 200);
}
