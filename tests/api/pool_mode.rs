//! `CONDUIT_DB_POOL_MODE=transaction`, for a pooler in transaction mode
//! (PgBouncer): each request's statements in one transaction, and nothing
//! left in the server session after it. PgBouncer itself is exercised by
//! `make topology-test`; these pin the behaviour it relies on.

use clap::Parser;
use conduit::cli::Cli;
use conduit::db::{build_pool, Db, DbError};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_on, TestDatabase};

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A one-connection `Db` on `url`, as the server builds it.
fn db_on(url: &str, mode: &str) -> Db {
    let cli = Cli::try_parse_from([
        "conduit",
        "--database-url",
        url,
        "--db-pool-size",
        "1",
        "--db-pool-mode",
        mode,
        "--db-statement-timeout",
        "3s",
        "--migration-database-url",
        url,
    ])
    .expect("valid flags");
    let settings = cli.settings.settings().expect("valid settings").database;
    let pool = build_pool(&settings, prometheus::IntCounter::new("q", "q").unwrap()).unwrap();
    Db::new(pool, &settings)
}

async fn statement_timeout(db: &Db) -> String {
    db.run(async |conn| {
        let row: Setting =
            diesel::sql_query("SELECT current_setting('statement_timeout') AS value")
                .get_result(conn)
                .await?;
        Ok::<_, DbError>(row.value)
    })
    .await
    .unwrap()
}

/// Whether a run's statements share one transaction: `now()` is when the
/// transaction started, so it stays put across statements only inside one.
async fn in_transaction(db: &Db) -> bool {
    db.run(async |conn| {
        let first: Setting = diesel::sql_query("SELECT now()::text AS value")
            .get_result(conn)
            .await?;
        diesel::sql_query("SELECT pg_sleep(0.02)")
            .execute(conn)
            .await?;
        let second: Setting = diesel::sql_query("SELECT now()::text AS value")
            .get_result(conn)
            .await?;
        Ok::<_, DbError>(first.value == second.value)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn transaction_mode_sets_the_timeout_per_transaction_and_leaves_nothing_in_the_session() {
    let app = spawn_app().await;
    let url = app.db.url();
    let db = db_on(&url, "transaction");

    // A request's statements share a transaction, so they never reach
    // different sessions of the pooler.
    assert!(in_transaction(&db).await, "one transaction per run");
    assert_eq!(
        statement_timeout(&db).await,
        "3s",
        "SET LOCAL in each transaction"
    );
    // The same (only) connection, outside any run: no session-level SET,
    // which a pooler would leave on a server connection for other clients.
    let mut conn = db.pool().get().await.unwrap();
    let outside: Setting =
        diesel::sql_query("SELECT current_setting('statement_timeout') AS value")
            .get_result(&mut *conn)
            .await
            .unwrap();
    assert_eq!(outside.value, "0", "no session-level statement_timeout");
    // No statement outlives its transaction: the next session would not
    // know it (and another client's could collide with its name).
    let prepared: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements \
         WHERE statement NOT LIKE '%pg_prepared_statements%'",
    )
    .get_result(&mut *conn)
    .await
    .unwrap();
    assert_eq!(prepared.n, 0, "statements are not kept across transactions");

    // Statements another client left on the server connection (a replica
    // in session mode, psql) are dropped before ours could collide with
    // them: tokio-postgres names statements s0, s1, ... in every process.
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute(
        "PREPARE s1 AS SELECT 1; PREPARE s2 AS SELECT 2; PREPARE leftover AS SELECT 3",
    )
    .await
    .unwrap();
    drop(conn);
    assert_eq!(
        statement_timeout(&db).await,
        "3s",
        "works with leftovers present"
    );
    let mut conn = db.pool().get().await.unwrap();
    let prepared: Count = diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        prepared.n, 1,
        "only the count itself: the leftovers were deallocated"
    );
    drop(conn);

    // Session mode (the default) keeps the session-level timeout and runs
    // statements as they come.
    let session = db_on(&url, "session");
    assert_eq!(statement_timeout(&session).await, "3s");
    assert!(!in_transaction(&session).await, "statements as they come");
}

#[tokio::test]
async fn transaction_mode_rolls_back_a_failed_request_and_commits_a_good_one() {
    let app = spawn_app().await;
    let db = db_on(&app.db.url(), "transaction");
    let insert = "INSERT INTO tags (name) VALUES ($1)";

    let failed: Result<(), DbError> = db
        .run(async |conn| {
            diesel::sql_query(insert)
                .bind::<Text, _>("rolled-back")
                .execute(conn)
                .await?;
            Err(diesel::result::Error::NotFound.into())
        })
        .await;
    assert!(failed.is_err());
    db.run(async |conn| {
        diesel::sql_query(insert)
            .bind::<Text, _>("committed")
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
    .await
    .unwrap();

    let names = |name: &'static str| {
        let db = db.clone();
        async move {
            db.run(async |conn| {
                let row: Count =
                    diesel::sql_query("SELECT count(*) AS n FROM tags WHERE name = $1")
                        .bind::<Text, _>(name)
                        .get_result(conn)
                        .await?;
                Ok::<_, DbError>(row.n)
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(names("rolled-back").await, 0, "an Err rolls the work back");
    assert_eq!(names("committed").await, 1, "an Ok commits it");
}

#[tokio::test]
async fn every_endpoint_works_in_transaction_mode() {
    let db = TestDatabase::create().await;
    let url = db.url();
    let app = spawn_app_on(
        db,
        &[
            "--db-pool-mode",
            "transaction",
            "--migration-database-url",
            &url,
        ],
    )
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    assert_eq!(
        app.login("alice@example.org", "password123").await.status,
        200
    );
    assert_eq!(
        app.login("alice@example.org", "wrong-password")
            .await
            .status,
        401
    );

    let slug = app.create_article(&alice, "Pooled", &["pool"]).await;
    let same_title = app.create_article(&alice, "Pooled", &["pool"]).await;
    assert_ne!(
        slug, same_title,
        "a taken slug retried inside the request's transaction"
    );
    let updated = app
        .put(
            &format!("/api/articles/{slug}"),
            Some(&alice),
            json!({"article": {"body": "new body", "tagList": ["pool", "bouncer"]}}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["article"]["body"], "new body");
    assert_eq!(
        app.post("/api/profiles/alice/follow", Some(&bob), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post(
            &format!("/api/articles/{slug}/favorite"),
            Some(&bob),
            json!({})
        )
        .await
        .status,
        200
    );
    let comment = app
        .post(
            &format!("/api/articles/{slug}/comments"),
            Some(&bob),
            json!({"comment": {"body": "nice"}}),
        )
        .await;
    assert_eq!(comment.status, 201, "{}", comment.body);

    let feed = app.get("/api/articles/feed", Some(&bob)).await;
    assert_eq!(feed.status, 200);
    assert_eq!(feed.body["articlesCount"], 2);
    let article = app.get(&format!("/api/articles/{slug}"), Some(&bob)).await;
    assert_eq!(article.body["article"]["favorited"], true);
    assert_eq!(article.body["article"]["author"]["following"], true);
    let comments = app
        .get(&format!("/api/articles/{slug}/comments"), None)
        .await;
    assert_eq!(comments.body["comments"].as_array().map(Vec::len), Some(1));
    let tags = app.get("/api/tags", None).await;
    assert!(tags.body["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("bouncer")));

    // Errors roll back and leave the connection usable for the next request.
    assert_eq!(
        app.delete(&format!("/api/articles/{slug}"), Some(&bob))
            .await
            .status,
        403
    );
    assert_eq!(
        app.get("/api/articles/no-such-slug", None).await.status,
        404
    );
    assert_eq!(
        app.delete(&format!("/api/articles/{slug}"), Some(&alice))
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&format!("/api/articles/{slug}"), None).await.status,
        404
    );
    assert_eq!(app.get("/ready", None).await.status, 200);
    let user = app.get("/api/user", Some(&alice)).await;
    assert_eq!(user.body["user"]["username"], "alice");
}
