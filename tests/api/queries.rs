//! Every list endpoint costs a constant number of SQL statements, whatever
//! the page size, counted by the server's own `conduit_db_queries_total`.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn lists_cost_the_same_number_of_queries_for_1_and_for_20_items() {
    let app = spawn_app().await;
    let author = app.register("prolific").await;
    let reader = app.register("reader").await;
    app.post("/api/profiles/prolific/follow", Some(&reader), json!({}))
        .await;
    let mut slugs = Vec::new();
    for i in 0..20 {
        let tags = [format!("tag{i}"), "common".to_owned()];
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let slug = app
            .create_article(&author, &format!("Article {i}"), &tags)
            .await;
        app.post(
            &format!("/api/articles/{slug}/favorite"),
            Some(&reader),
            json!({}),
        )
        .await;
        slugs.push(slug);
    }
    let busy = &slugs[0];
    let quiet = &slugs[1];
    for i in 0..20 {
        app.post(
            &format!("/api/articles/{busy}/comments"),
            Some(&author),
            json!({"comment": {"body": format!("c{i}")}}),
        )
        .await;
    }
    app.post(
        &format!("/api/articles/{quiet}/comments"),
        Some(&author),
        json!({"comment": {"body": "only"}}),
    )
    .await;

    let cases = [
        (
            "articles, anonymous",
            "/api/articles?author=prolific&limit=1",
            "/api/articles?author=prolific&limit=20",
            None,
        ),
        (
            "articles, signed in",
            "/api/articles?author=prolific&limit=1",
            "/api/articles?author=prolific&limit=20",
            Some(reader.as_str()),
        ),
        (
            "articles by tag",
            "/api/articles?tag=common&limit=1",
            "/api/articles?tag=common&limit=20",
            Some(reader.as_str()),
        ),
        (
            "feed",
            "/api/articles/feed?limit=1",
            "/api/articles/feed?limit=20",
            Some(reader.as_str()),
        ),
    ];
    for (name, one, twenty, token) in cases {
        let small = app.queries_for(one, token).await;
        let large = app.queries_for(twenty, token).await;
        eprintln!("queries: {name}: {small} for 1 item, {large} for 20");
        assert_eq!(small, large, "{name}");
    }
    let comment_paths = [
        format!("/api/articles/{quiet}/comments"),
        format!("/api/articles/{busy}/comments"),
    ];
    let one = app.queries_for(&comment_paths[0], Some(&reader)).await;
    let twenty = app.queries_for(&comment_paths[1], Some(&reader)).await;
    eprintln!("queries: comments: {one} for 1 item, {twenty} for 20");
    assert_eq!(one, twenty, "comments");
    let tags = app.queries_for("/api/tags", None).await;
    let single = app
        .queries_for(&format!("/api/articles/{busy}"), Some(&reader))
        .await;
    let single_anonymous = app
        .queries_for(&format!("/api/articles/{busy}"), None)
        .await;
    eprintln!(
        "queries: tags (22 tags): {tags}; one article: {single}, anonymous: {single_anonymous}"
    );
    assert!(tags <= 2, "tags: {tags}");
    // The session, then the article with all its details in one statement.
    assert_eq!(single, 2, "one article, signed in");
    assert_eq!(single_anonymous, 1, "one article, anonymous");
}
