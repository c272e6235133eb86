//! The tags in use, and the counts the database keeps of articles and of
//! tag links, whichever way they come and go.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::support::database::select_texts;

#[tokio::test]
async fn tags_lists_the_tags_in_use() {
    let app = spawn_app().await;
    let token = app.register("tagger").await;
    let slug = app
        .create_article(&token, "Tagged", &["beta", "alpha"])
        .await;

    let tags = app.get("/api/tags", None).await;
    app.put(
        &format!("/api/articles/{slug}"),
        Some(&token),
        json!({"article": {"tagList": []}}),
    )
    .await;
    let after = app.get("/api/tags", None).await;

    assert_eq!(
        tags.body["tags"],
        json!(["alpha", "beta", "conduit", "welcome"])
    );
    assert_eq!(after.body["tags"], json!(["conduit", "welcome"]));
}

/// articlesCount of the unfiltered list comes from counters that triggers
/// keep (migration 003): it must stay equal to a real count through
/// creations, deletions, a user's deletion cascading to their articles,
/// and a TRUNCATE.
#[tokio::test]
async fn the_kept_article_count_follows_every_way_articles_come_and_go() {
    use diesel_async::SimpleAsyncConnection;

    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for i in 0..3 {
        app.create_article(&alice, &format!("Alice {i}"), &["a"])
            .await;
    }
    let doomed = app.create_article(&bob, "Bob", &[]).await;
    app.create_article(&bob, "Bob again", &[]).await;
    let mut conn = app.db.connect().await;
    let real = "SELECT count(*)::text AS value FROM articles";
    let listed = |reply: crate::helpers::Reply| reply.body["articlesCount"].to_string();

    let after_creations = listed(app.get("/api/articles", None).await);
    assert_eq!(after_creations, "6", "five and the demo article");
    assert_eq!(select_texts(&mut conn, real).await, [after_creations]);

    app.delete(&format!("/api/articles/{doomed}"), Some(&bob))
        .await;
    conn.batch_execute("DELETE FROM users WHERE username = 'alice'")
        .await
        .unwrap();
    let after_deletions = listed(app.get("/api/articles", None).await);
    assert_eq!(
        after_deletions, "2",
        "bob's other article and the demo article"
    );
    assert_eq!(select_texts(&mut conn, real).await, [after_deletions]);

    conn.batch_execute("TRUNCATE articles CASCADE")
        .await
        .unwrap();
    assert_eq!(listed(app.get("/api/articles", None).await), "0");
    app.create_article(&bob, "After the truncate", &[]).await;
    assert_eq!(listed(app.get("/api/articles", None).await), "1");
}

/// articlesCount of a tag's list comes from counts that triggers keep
/// (migration 010): it must stay equal to a real count through creations,
/// tag changes, deletions, deletions cascading from users and tags, and a
/// TRUNCATE.
#[tokio::test]
async fn the_kept_tag_count_follows_every_way_links_come_and_go() {
    use diesel_async::SimpleAsyncConnection;

    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut slugs = Vec::new();
    for i in 0..4 {
        slugs.push(
            app.create_article(&alice, &format!("Alice {i}"), &["rust", "web"])
                .await,
        );
    }
    let bobs = app.create_article(&bob, "Bob", &["rust", "go"]).await;
    let mut conn = app.db.connect().await;
    let counted = |tag: &'static str| {
        let app = &app;
        async move {
            let reply = app.get(&format!("/api/articles?tag={tag}"), None).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body["articlesCount"].as_i64().unwrap()
        }
    };

    assert_eq!(
        [
            counted("rust").await,
            counted("web").await,
            counted("go").await
        ],
        [5, 4, 1]
    );
    crate::support::tag_links::assert_counts_exact(&mut conn).await;

    // A tag update deletes the article's links, then inserts the new ones.
    let retagged = app
        .put(
            &format!("/api/articles/{}", slugs[0]),
            Some(&alice),
            json!({"article": {"tagList": ["go", "web", "zig"]}}),
        )
        .await;
    assert_eq!(retagged.status, 200, "{}", retagged.body);
    app.put(
        &format!("/api/articles/{}", slugs[1]),
        Some(&alice),
        json!({"article": {"tagList": []}}),
    )
    .await;
    assert_eq!(
        [
            counted("rust").await,
            counted("web").await,
            counted("go").await,
            counted("zig").await
        ],
        [3, 3, 2, 1]
    );
    crate::support::tag_links::assert_counts_exact(&mut conn).await;

    app.delete(&format!("/api/articles/{bobs}"), Some(&bob))
        .await;
    assert_eq!([counted("rust").await, counted("go").await], [2, 1]);
    // Alice's articles go with her, and their links with them.
    conn.batch_execute("DELETE FROM users WHERE username = 'alice'")
        .await
        .unwrap();
    assert_eq!(
        [
            counted("rust").await,
            counted("web").await,
            counted("go").await,
            counted("zig").await
        ],
        [0, 0, 0, 0]
    );
    crate::support::tag_links::assert_counts_exact(&mut conn).await;

    let again = app.create_article(&bob, "Bob again", &["go", "zig"]).await;
    conn.batch_execute("DELETE FROM tags WHERE name = 'zig'")
        .await
        .unwrap();
    assert_eq!([counted("go").await, counted("zig").await], [1, 0]);
    crate::support::tag_links::assert_counts_exact(&mut conn).await;

    conn.batch_execute("TRUNCATE articles CASCADE")
        .await
        .unwrap();
    assert_eq!([counted("go").await, counted("welcome").await], [0, 0]);
    app.create_article(&bob, "After the truncate", &["go"])
        .await;
    assert_eq!(counted("go").await, 1);
    crate::support::tag_links::assert_counts_exact(&mut conn).await;
    let _ = again;
}
