//! How sessions end under pressure: two logouts of one session at once end
//! it once, and a user's live sessions are capped, the oldest ending first.

use std::time::Duration;

use diesel_async::{AnsiTransactionManager, TransactionManager};

use crate::helpers::spawn_app;
use crate::support::database::{select_texts, wait_for_a_lock_waiter};

/// Two logouts of one session at once (the test holds the session's row
/// so that both are on it together): one ends it, the other is a 401,
/// neither a 500 (two transactions each holding the row shared and then
/// updating it would deadlock).
#[tokio::test]
async fn two_logouts_of_one_session_at_once_end_it_once() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let token = app.register("twice").await;
    let mut locker = app.db.connect().await;
    let mut watcher = app.db.connect().await;
    AnsiTransactionManager::begin_transaction(&mut locker)
        .await
        .expect("begin");
    diesel::sql_query("SELECT id FROM sessions FOR UPDATE")
        .execute(&mut locker)
        .await
        .expect("lock the session");

    let logouts = async {
        tokio::join!(
            app.delete("/api/user/session", Some(&token)),
            app.delete("/api/user/session", Some(&token))
        )
    };
    let release = async {
        wait_for_a_lock_waiter(&mut watcher, || false).await;
        // Both on the row, on a busy host too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        AnsiTransactionManager::commit_transaction(&mut locker)
            .await
            .expect("commit");
    };
    let ((first, second), ()) = tokio::join!(logouts, release);

    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [204, 401], "{} / {}", first.body, second.body);
    assert_eq!(app.get("/api/user", Some(&token)).await.status, 401);
}

#[tokio::test]
async fn a_user_keeps_at_most_a_hundred_live_sessions_and_the_oldest_ends_first() {
    // Right passwords take their throttle count back: without a cap one
    // account logging in in a loop added rows no purge removes.
    let app = spawn_app().await;
    let first = app.register("many").await;
    let mut conn = app.db.connect().await;
    select_texts(
        &mut conn,
        "WITH made AS (INSERT INTO sessions (user_id, token_sha256, expires_at) \
           SELECT u.id, sha256(convert_to(g::text, 'UTF8')), now() + interval '1 day' \
           FROM users u, generate_series(1, 99) g WHERE u.username = 'many' RETURNING 1) \
         SELECT count(*)::text AS value FROM made",
    )
    .await;
    let live = "SELECT count(*)::text AS value FROM sessions s JOIN users u ON u.id = s.user_id \
                WHERE u.username = 'many' AND s.revoked_at IS NULL";
    assert_eq!(select_texts(&mut conn, live).await, ["100"]);

    let login = app.login("many@example.org", "password123").await;

    assert_eq!(login.status.as_u16(), 200, "{}", login.body);
    assert_eq!(select_texts(&mut conn, live).await, ["100"]);
    assert_eq!(
        app.get("/api/user", Some(&first)).await.status.as_u16(),
        401,
        "the oldest ended"
    );
    let newest = login.body["user"]["token"].as_str().expect("a token");
    assert_eq!(
        app.get("/api/user", Some(newest)).await.status.as_u16(),
        200
    );
}
