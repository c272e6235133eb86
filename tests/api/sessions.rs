use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with};
use crate::support::database::select_texts;

#[tokio::test]
async fn a_session_survives_a_restart_of_the_server() {
    let app = spawn_app().await;
    let token = app.register("ivan").await;

    let db = app.stop().await;
    let restarted = spawn_app_on(db, &[]).await;

    let reply = restarted.get("/api/user", Some(&token)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["user"]["username"], "ivan");
}

#[tokio::test]
async fn logging_out_ends_only_the_presented_session() {
    let app = spawn_app().await;
    let first = app.register("judy").await;
    let second = app.login("judy@example.org", "password123").await.body["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let logout = app.delete("/api/user/session", Some(&first)).await;

    assert_eq!(logout.status, 204);
    let ended = app.get("/api/user", Some(&first)).await;
    assert_eq!(ended.status, 401);
    assert_eq!(ended.error("token"), "is invalid");
    assert_eq!(app.get("/api/user", Some(&second)).await.status, 200);
    assert_eq!(app.delete("/api/user/session", None).await.status, 401);
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = spawn_app().await;
    let current = app.register("mallory").await;
    let other = app.login("mallory@example.org", "password123").await.body["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let changed = app
        .put(
            "/api/user",
            Some(&current),
            json!({"user": {"password": "a-new-password"}}),
        )
        .await;

    assert_eq!(changed.status, 200);
    assert_eq!(app.get("/api/user", Some(&current)).await.status, 200);
    assert_eq!(app.get("/api/user", Some(&other)).await.status, 401);
    assert_eq!(
        app.login("mallory@example.org", "password123").await.status,
        401
    );
    assert_eq!(
        app.login("mallory@example.org", "a-new-password")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_expired_session_is_rejected() {
    let app = spawn_app_with(&["--session-ttl", "1s"]).await;
    let token = app.register("oscar").await;
    assert_eq!(app.get("/api/user", Some(&token)).await.status, 200);

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let reply = app.get("/api/user", Some(&token)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error("token"), "is invalid");
}

#[tokio::test]
async fn last_used_is_not_written_on_every_request() {
    let app = spawn_app().await;
    let token = app.register("peggy").await;
    let mut conn = app.db.connect().await;
    let last_used = "SELECT last_used_at::text AS value FROM sessions";
    let before = crate::support::database::select_texts(&mut conn, last_used).await;

    for _ in 0..3 {
        assert_eq!(app.get("/api/user", Some(&token)).await.status, 200);
    }

    assert_eq!(
        crate::support::database::select_texts(&mut conn, last_used).await,
        before
    );
}

/// Ended and expired sessions are deleted by the server itself (soon after
/// boot, then periodically), and live ones are kept.
#[tokio::test]
async fn ended_and_expired_sessions_are_deleted_and_live_ones_kept() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let live = app.register("keeper").await;
    let ended = app.login("keeper@example.org", "password123").await.body["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let expiring = app.login("keeper@example.org", "password123").await.body["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete("/api/user/session", Some(&ended)).await.status,
        204
    );
    let db = app.stop().await;
    let mut conn = db.connect().await;
    // Expire the newest session (moving its creation back too, as the
    // table's CHECK requires expiry after creation).
    diesel::sql_query(
        "UPDATE sessions SET created_at = now() - interval '2 days', \
         expires_at = now() - interval '1 day' \
         WHERE id = (SELECT max(id) FROM sessions)",
    )
    .execute(&mut conn)
    .await
    .expect("expire a session");
    const COUNT: &str = "SELECT count(*)::text AS value FROM sessions";
    assert_eq!(select_texts(&mut conn, COUNT).await, ["3"]);

    let restarted = spawn_app_on(db, &[]).await;
    // The first round runs about a second after boot, off /ready's path.
    assert!(
        crate::helpers::texts_become(&mut conn, COUNT, &["1"]).await,
        "the ended and the expired one are gone"
    );
    assert_eq!(restarted.get("/api/user", Some(&live)).await.status, 200);
    assert_eq!(
        restarted.get("/api/user", Some(&expiring)).await.status,
        401
    );
}
