//! Updating the user, how passwords and tokens are stored, and the demo
//! account's logins.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::support::database::select_texts;

#[tokio::test]
async fn updating_the_user_changes_only_what_is_sent() {
    let app = spawn_app().await;
    let token = app.register("erin").await;

    let bio = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"bio": "Hi", "image": "https://example.org/e.png"}}),
        )
        .await;
    let cleared = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"bio": "", "image": null}}),
        )
        .await;
    let renamed = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "erin2"}}),
        )
        .await;
    let after = app.get("/api/user", Some(&token)).await;

    assert_eq!(bio.status, 200);
    assert_eq!(bio.body["user"]["bio"], "Hi");
    assert_eq!(bio.body["user"]["image"], "https://example.org/e.png");
    assert_eq!(cleared.body["user"]["bio"], json!(null));
    assert_eq!(cleared.body["user"]["image"], json!(null));
    assert_eq!(renamed.body["user"]["username"], "erin2");
    assert_eq!(after.status, 200, "the token survives a new username");
    assert_eq!(after.body["user"]["username"], "erin2");
    assert_eq!(after.body["user"]["email"], "erin@example.org");
    let mut conn = app.db.connect().await;
    let stored = select_texts(
        &mut conn,
        "SELECT coalesce(bio, 'NULL') AS value FROM users WHERE username = 'erin2'",
    )
    .await;
    assert_eq!(stored, ["NULL"], "\"\" is stored as null");
}

#[tokio::test]
async fn updating_the_user_refuses_null_blank_and_taken_values() {
    let app = spawn_app().await;
    app.register("frank").await;
    let token = app.register("grace").await;

    let null_email = app
        .put("/api/user", Some(&token), json!({"user": {"email": null}}))
        .await;
    let blank_name = app
        .put("/api/user", Some(&token), json!({"user": {"username": ""}}))
        .await;
    let null_password = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"password": null}}),
        )
        .await;
    let taken = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "frank"}}),
        )
        .await;
    let no_token = app
        .put("/api/user", None, json!({"user": {"bio": "x"}}))
        .await;

    assert_eq!(null_email.status, 422);
    assert_eq!(null_email.error("email"), "can't be null");
    assert_eq!(blank_name.status, 422);
    assert_eq!(blank_name.error("username"), "can't be blank");
    assert_eq!(null_password.status, 422);
    assert_eq!(taken.status, 422, "the spec lists no 409 for PUT /user");
    assert_eq!(taken.error("username"), "has already been taken");
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.error("token"), "is missing");
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_and_tokens_only_as_digests() {
    use sha2::{Digest, Sha256};
    let app = spawn_app().await;
    let token = app.register("heidi").await;
    let mut conn = app.db.connect().await;

    let hash = select_texts(
        &mut conn,
        "SELECT password_hash AS value FROM users WHERE username = 'heidi'",
    )
    .await;
    let digests = select_texts(
        &mut conn,
        "SELECT encode(token_sha256, 'hex') AS value FROM sessions",
    )
    .await;
    let everything = select_texts(
        &mut conn,
        "SELECT concat_ws(' ', u.password_hash, encode(s.token_sha256, 'escape')) AS value \
         FROM users u JOIN sessions s ON s.user_id = u.id",
    )
    .await;

    assert!(
        hash[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hash[0]
    );
    let expected: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digests, [expected]);
    assert!(!everything.concat().contains(&token));
    assert!(!everything.concat().contains("password123"));
}

#[tokio::test]
async fn the_demo_account_logs_in_in_development_only() {
    let development = spawn_app().await;
    let production = crate::helpers::spawn_app_with(&["--env", "production"]).await;
    let allowed =
        crate::helpers::spawn_app_with(&["--env", "production", "--allow-demo-user", "true"]).await;

    let dev = development.login("demo@example.com", "conduit-demo").await;
    let prod = production.login("demo@example.com", "conduit-demo").await;
    let prod_allowed = allowed.login("demo@example.com", "conduit-demo").await;

    assert_eq!(dev.status, 200);
    assert_eq!(dev.body["user"]["username"], "demo");
    assert_eq!(prod.status, 401);
    assert_eq!(prod.error("credentials"), "invalid");
    assert_eq!(prod_allowed.status, 200);
}
