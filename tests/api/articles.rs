//! Articles: creating, updating and deleting them, listing, the feed, favorites.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::support::database::select_texts;

#[tokio::test]
async fn creating_an_article_returns_it_with_sorted_tags_and_a_unique_slug() {
    let app = spawn_app().await;
    let token = app.register("writer").await;

    let first = app
        .post("/api/articles", Some(&token), json!({"article": {"title": "Same Title", "description": "d", "body": "b", "tagList": ["zeta", "alpha", "zeta"]}}))
        .await;
    let second = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "Same Title", "description": "d", "body": "b"}}),
        )
        .await;

    assert_eq!(first.status, 201);
    let article = &first.body["article"];
    assert_eq!(article["title"], "Same Title");
    assert_eq!(article["tagList"], json!(["alpha", "zeta"]));
    assert_eq!(article["favorited"], false);
    assert_eq!(article["favoritesCount"], 0);
    assert_eq!(article["author"]["username"], "writer");
    assert_eq!(article["author"]["following"], false);
    let created = article["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), "2026-01-01T00:00:00.000Z".len(), "{created}");
    assert!(created.ends_with('Z'));
    assert_eq!(second.status, 201);
    assert_eq!(second.body["article"]["tagList"], json!([]));
    assert_ne!(article["slug"], second.body["article"]["slug"]);
    assert!(article["slug"].as_str().unwrap().starts_with("same-title-"));
}

#[tokio::test]
async fn creating_an_article_names_every_missing_field_and_needs_a_token() {
    let app = spawn_app().await;
    let token = app.register("writer").await;

    let blank = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": " ", "description": ""}}),
        )
        .await;
    let anonymous = app
        .post("/api/articles", None, json!({"article": {}}))
        .await;
    let null_tags = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "t", "description": "d", "body": "b", "tagList": [""]}}),
        )
        .await;

    assert_eq!(blank.status, 422);
    assert_eq!(blank.error("title"), "can't be blank");
    assert_eq!(blank.error("description"), "can't be blank");
    assert_eq!(blank.error("body"), "can't be blank");
    assert_eq!(anonymous.status, 401);
    assert_eq!(null_tags.status, 422);
    let mut conn = app.db.connect().await;
    let articles = select_texts(&mut conn, "SELECT count(*)::text AS value FROM articles WHERE author_id <> (SELECT id FROM users WHERE username = 'demo')").await;
    assert_eq!(articles, ["0"], "nothing half-written");
}

#[tokio::test]
async fn updating_keeps_created_at_moves_updated_at_and_handles_tag_lists() {
    let app = spawn_app().await;
    let token = app.register("editor").await;
    let slug = app.create_article(&token, "Draft", &["one", "two"]).await;
    let original = app.get(&format!("/api/articles/{slug}"), None).await.body["article"].clone();

    let body_only = app
        .put(
            &format!("/api/articles/{slug}"),
            Some(&token),
            json!({"article": {"body": "new body"}}),
        )
        .await;
    let cleared = app
        .put(
            &format!("/api/articles/{slug}"),
            Some(&token),
            json!({"article": {"tagList": []}}),
        )
        .await;
    let null_tags = app
        .put(
            &format!("/api/articles/{slug}"),
            Some(&token),
            json!({"article": {"tagList": null}}),
        )
        .await;
    let null_title = app
        .put(
            &format!("/api/articles/{slug}"),
            Some(&token),
            json!({"article": {"title": null}}),
        )
        .await;
    let retitled = app
        .put(
            &format!("/api/articles/{slug}"),
            Some(&token),
            json!({"article": {"title": "Final"}}),
        )
        .await;

    assert_eq!(body_only.status, 200);
    let updated = &body_only.body["article"];
    assert_eq!(updated["body"], "new body");
    assert_eq!(updated["slug"], slug.as_str());
    assert_eq!(
        updated["tagList"],
        json!(["one", "two"]),
        "absent tagList keeps the tags"
    );
    assert_eq!(updated["createdAt"], original["createdAt"]);
    assert_ne!(updated["updatedAt"], original["updatedAt"]);
    assert_eq!(cleared.body["article"]["tagList"], json!([]));
    assert_eq!(null_tags.status, 422);
    assert_eq!(null_tags.error("tagList"), "can't be null");
    assert_eq!(null_title.status, 422);
    assert_eq!(retitled.status, 200);
    let new_slug = retitled.body["article"]["slug"].as_str().unwrap();
    assert!(new_slug.starts_with("final-"), "{new_slug}");
    assert_eq!(
        app.get(&format!("/api/articles/{new_slug}"), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn only_the_author_may_update_or_delete_and_auth_comes_before_lookup() {
    let app = spawn_app().await;
    let author = app.register("owner").await;
    let other = app.register("intruder").await;
    let slug = app.create_article(&author, "Mine", &[]).await;
    let path = format!("/api/articles/{slug}");

    let update = app
        .put(&path, Some(&other), json!({"article": {"body": "hacked"}}))
        .await;
    let delete = app.delete(&path, Some(&other)).await;
    let anonymous_unknown = app.delete("/api/articles/no-such-slug", None).await;
    let unknown = app
        .delete("/api/articles/no-such-slug", Some(&author))
        .await;

    assert_eq!(update.status, 403);
    assert_eq!(update.error("article"), "forbidden");
    assert_eq!(delete.status, 403);
    assert_eq!(
        app.get(&path, None).await.body["article"]["body"],
        "the body"
    );
    assert_eq!(anonymous_unknown.status, 401);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error("article"), "not found");

    assert_eq!(app.delete(&path, Some(&author)).await.status, 204);
    assert_eq!(app.get(&path, None).await.status, 404);
}

#[tokio::test]
async fn listing_filters_orders_newest_first_and_pages() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let ben = app.register("ben").await;
    let a1 = app.create_article(&ann, "A one", &["rust"]).await;
    let a2 = app.create_article(&ann, "A two", &["go"]).await;
    let b1 = app.create_article(&ben, "B one", &["rust"]).await;
    app.post(
        &format!("/api/articles/{a1}/favorite"),
        Some(&ben),
        json!({}),
    )
    .await;

    let all = app.get("/api/articles?limit=3", None).await;
    let by_tag = app.get("/api/articles?tag=rust", None).await;
    let by_author = app.get("/api/articles?author=ann", None).await;
    let favorited = app.get("/api/articles?favorited=ben", Some(&ben)).await;
    let second_page = app
        .get("/api/articles?author=ann&limit=1&offset=1", None)
        .await;
    let bad_limit = app.get("/api/articles?limit=0", None).await;
    let bad_offset = app.get("/api/articles?offset=-1", None).await;

    let slugs = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["articles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(slugs(&all), [b1.clone(), a2.clone(), a1.clone()]);
    assert_eq!(all.body["articlesCount"], 4, "three and the demo article");
    assert!(
        all.body["articles"][0].get("body").is_none(),
        "lists leave the body out"
    );
    assert_eq!(slugs(&by_tag), [b1, a1.clone()]);
    assert_eq!(by_author.body["articlesCount"], 2);
    assert_eq!(slugs(&favorited), std::slice::from_ref(&a1));
    assert_eq!(favorited.body["articles"][0]["favorited"], true);
    assert_eq!(favorited.body["articles"][0]["favoritesCount"], 1);
    assert_eq!(slugs(&second_page), [a1]);
    assert_eq!(second_page.body["articlesCount"], 2);
    assert_eq!(bad_limit.status, 422);
    assert!(bad_limit.error("limit").contains("1 to 100"));
    assert_eq!(bad_offset.status, 422);
}

#[tokio::test]
async fn the_feed_shows_followed_authors_only_and_needs_a_token() {
    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let star = app.register("star").await;
    let stranger = app.register("stranger").await;
    let followed = app.create_article(&star, "Star post", &[]).await;
    app.create_article(&stranger, "Stranger post", &[]).await;

    let before = app.get("/api/articles/feed", Some(&reader)).await;
    app.post("/api/profiles/star/follow", Some(&reader), json!({}))
        .await;
    let after = app.get("/api/articles/feed", Some(&reader)).await;
    let anonymous = app.get("/api/articles/feed", None).await;

    assert_eq!(before.body["articlesCount"], 0);
    assert_eq!(after.body["articlesCount"], 1);
    assert_eq!(after.body["articles"][0]["slug"], followed.as_str());
    assert_eq!(after.body["articles"][0]["author"]["following"], true);
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn favoriting_counts_once_per_user_and_unfavoriting_undoes_it() {
    let app = spawn_app().await;
    let author = app.register("fav_author").await;
    let fan = app.register("fan").await;
    let slug = app.create_article(&author, "Loved", &[]).await;
    let path = format!("/api/articles/{slug}/favorite");

    app.post(&path, Some(&fan), json!({})).await;
    let twice = app.post(&path, Some(&fan), json!({})).await;
    let by_author = app.post(&path, Some(&author), json!({})).await;
    let undone = app.delete(&path, Some(&fan)).await;
    let unknown = app
        .post("/api/articles/nope/favorite", Some(&fan), json!({}))
        .await;

    assert_eq!(twice.body["article"]["favoritesCount"], 1);
    assert_eq!(twice.body["article"]["favorited"], true);
    assert_eq!(by_author.body["article"]["favoritesCount"], 2);
    assert_eq!(undone.body["article"]["favoritesCount"], 1);
    assert_eq!(undone.body["article"]["favorited"], false);
    assert_eq!(unknown.status, 404);
}
