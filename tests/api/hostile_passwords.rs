//! Passwords under attack: a login racing a password change keeps no
//! session, password changes have a budget, and the demo account stays the
//! demo account whatever its email.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Reply, TestApp, TestDatabase};
use crate::hostile_sessions::login_token;

/// Logins with the old password keep arriving while the owner changes it:
/// each login reads the hash, spends the hashing time, then starts its
/// session. Every session they got must be over once the change and they
/// are done, whichever finished first: one started after the change's
/// revocation, from a hash read before it, would outlive it.
#[tokio::test]
async fn logins_with_the_old_password_racing_its_change_keep_no_session() {
    let app = spawn_app_with(&["--login-max-failures", "0"]).await;
    let owner = app.register("racer").await;
    let stop = AtomicBool::new(false);
    let logins = (0..6).map(|_| async {
        let mut tokens = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let reply = app.login("racer@example.org", "password123").await;
            match reply.status.as_u16() {
                200 => tokens.push(reply.body["user"]["token"].as_str().unwrap().to_owned()),
                // 503: the hashing queue, shared with the other tests.
                401 | 503 => {}
                other => panic!("login: {other} {}", reply.body),
            }
        }
        tokens
    });
    let change = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let changed = app
            .put(
                "/api/user",
                Some(&owner),
                json!({"user": {"password": "changed-in-the-middle"}}),
            )
            .await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        // Let the logins that read the old hash before the change finish.
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.store(true, Ordering::Release);
    };
    let (tokens, ()) = tokio::join!(futures_util::future::join_all(logins), change);

    let tokens: Vec<String> = tokens.into_iter().flatten().collect();
    assert!(!tokens.is_empty(), "no login got through before the change");
    let mut alive = 0;
    for token in &tokens {
        if app.get("/api/user", Some(token)).await.status != 401 {
            alive += 1;
        }
    }
    assert_eq!(
        alive,
        0,
        "{alive} of {} old-password sessions outlived the change",
        tokens.len()
    );
    assert_eq!(app.get("/api/user", Some(&owner)).await.status, 200);
}

async fn change_password(app: &TestApp, token: &str, password: &str) -> Reply {
    app.put(
        "/api/user",
        Some(token),
        json!({"user": {"password": password}}),
    )
    .await
}

/// Password changes count per session and, twice that, per user (a new
/// login gives no fresh budget): beyond them 429 with Retry-After, and
/// the password stays as it was.
#[tokio::test]
async fn password_changes_have_a_budget_per_session_and_per_user() {
    let app = spawn_app_with(&["--password-changes-per-session", "2"]).await;
    let first = app.register("changer").await;
    let email = "changer@example.org";

    for password in ["first-change-1", "first-change-2"] {
        assert_eq!(change_password(&app, &first, password).await.status, 200);
    }
    let refused = change_password(&app, &first, "first-change-3").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.error("password"), "changed too often; retry later");

    let second = login_token(&app, email, "first-change-2").await;
    for password in ["second-change-1", "second-change-2"] {
        assert_eq!(change_password(&app, &second, password).await.status, 200);
    }
    assert_eq!(
        change_password(&app, &second, "second-change-3")
            .await
            .status,
        429,
        "the session's budget"
    );
    let third = login_token(&app, email, "second-change-2").await;
    assert_eq!(
        change_password(&app, &third, "third-change-1").await.status,
        429,
        "the user's budget"
    );
    assert_eq!(app.login(email, "second-change-2").await.status, 200);
    // Other changes to the account are not password changes.
    let bio = app
        .put(
            "/api/user",
            Some(&third),
            json!({"user": {"bio": "still here"}}),
        )
        .await;
    assert_eq!(bio.status, 200, "{}", bio.body);
}

/// The seeded demo account renames its email while demo logins are
/// allowed (development); a production server on the same database still
/// knows it, and refuses its login under the new email.
#[tokio::test]
async fn the_demo_account_stays_refused_in_production_after_changing_its_email() {
    let development = spawn_app().await;
    let demo = login_token(&development, "demo@example.com", "conduit-demo").await;
    let renamed = development
        .put(
            "/api/user",
            Some(&demo),
            json!({"user": {"email": "renamed-demo@example.org"}}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let db = development.stop().await;

    let production = crate::helpers::spawn_app_on(db, &["--env", "production"]).await;
    let refused = production
        .login("renamed-demo@example.org", "conduit-demo")
        .await;

    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.error("credentials"), "invalid");
    production.register("someone").await;
    assert_eq!(
        production
            .login("someone@example.org", "password123")
            .await
            .status,
        200,
        "other accounts log in"
    );
}

/// The demo account's password is public: in production its login is a
/// failed login, refused before the hash and counted, so that it buys
/// nobody an unthrottled hash (also in transaction mode, where a refusal
/// returned as an error would roll its count back).
#[tokio::test]
async fn refused_demo_logins_are_failures_and_are_throttled_in_transaction_mode() {
    let db = TestDatabase::migrated().await;
    let url = db.url();
    let production = crate::helpers::spawn_app_on(
        db,
        &[
            "--env",
            "production",
            "--db-pool-mode",
            "transaction",
            "--migration-database-url",
            &url,
            "--login-max-failures",
            "2",
        ],
    )
    .await;

    for attempt in 1..=2 {
        let refused = production.login("demo@example.com", "conduit-demo").await;
        assert_eq!(refused.status, 401, "attempt {attempt}: {}", refused.body);
    }
    let throttled = production.login("demo@example.com", "conduit-demo").await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
}
