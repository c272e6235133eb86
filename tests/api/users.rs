use serde_json::json;

use crate::database::select_texts;
use crate::helpers::spawn_app;

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

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_address_but_successes_never() {
    let strict = crate::helpers::spawn_app_with(&["--login-max-failures", "3"]).await;
    strict.register("target").await;
    strict.register("neighbour").await;
    let relaxed = spawn_app().await;
    relaxed.register("regular").await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            strict
                .login("target@example.org", "wrong-password")
                .await
                .status
                .as_u16(),
        );
    }
    let blocked = strict
        .client
        .post(format!("{}/api/users/login", strict.address))
        .json(&json!({"user": {"email": "target@example.org", "password": "password123"}}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let blocked_status = blocked.status();
    let blocked_body: serde_json::Value = blocked.json().await.unwrap();
    let same_address = strict.login("neighbour@example.org", "password123").await;
    let mut successes = Vec::new();
    for _ in 0..15 {
        successes.push(
            relaxed
                .login("regular@example.org", "password123")
                .await
                .status
                .as_u16(),
        );
    }

    assert_eq!(statuses, [401, 401, 401]);
    assert_eq!(blocked_status, 429, "blocked, even with the right password");
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    assert_eq!(
        blocked_body["errors"]["credentials"][0],
        "too many failed attempts; retry later"
    );
    // An address has ten times an account's budget: one client's failures
    // for one account do not block everyone behind the same address.
    assert_eq!(
        same_address.status, 200,
        "another account from the same address"
    );
    assert!(successes.iter().all(|s| *s == 200), "{successes:?}");
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors_only_for_listed_origins() {
    let closed = spawn_app().await;
    let open = crate::helpers::spawn_app_with(&["--cors-origins", "https://app.example.org"]).await;
    let preflight = |app: &crate::helpers::TestApp, origin: &str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/articles", app.address),
            )
            .header("Origin", origin.to_owned())
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };

    let api = closed
        .client
        .get(format!("{}/api/tags", closed.address))
        .send()
        .await
        .unwrap();
    let docs = closed
        .client
        .get(format!("{}/api/docs/", closed.address))
        .send()
        .await
        .unwrap();
    let no_cors = preflight(&closed, "https://app.example.org").await.unwrap();
    let allowed = preflight(&open, "https://app.example.org").await.unwrap();
    let other = preflight(&open, "https://evil.example.net").await.unwrap();

    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert_eq!(api.headers()["referrer-policy"], "no-referrer");
    assert!(api.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let docs_policy = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        docs_policy.contains("script-src 'self'") && !docs_policy.contains("http"),
        "{docs_policy}"
    );
    assert!(no_cors
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
