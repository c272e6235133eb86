//! Every list the API answers with is bounded, whatever the request asks for.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::hostile::is_error_shape;

/// Every list has a bound: a page of comments (100 unless asked for
/// fewer), at most 100 tags, and an offset of at most 10,000, so that no
/// request's answer or work grows with the data.
#[tokio::test]
async fn every_list_is_bounded() {
    let app = spawn_app().await;
    let token = app.register("prolific").await;
    let slug = app.create_article(&token, "Busy thread", &["hot"]).await;
    let comments_path = format!("/api/articles/{slug}/comments");
    for i in 0..105 {
        let reply = app
            .post(
                &comments_path,
                Some(&token),
                json!({"comment": {"body": format!("comment {i}")}}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }

    let first = app.get(&comments_path, None).await;
    assert_eq!(first.status, 200);
    let first = first.body["comments"].as_array().expect("a list").clone();
    assert_eq!(first.len(), 100, "the default page");
    assert_eq!(first[0]["body"], "comment 104", "newest first");
    let rest = app
        .get(&format!("{comments_path}?limit=10&offset=100"), None)
        .await;
    let rest: Vec<&str> = rest.body["comments"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(
        rest,
        [
            "comment 4",
            "comment 3",
            "comment 2",
            "comment 1",
            "comment 0"
        ]
    );

    for path in [
        format!("{comments_path}?limit=101"),
        format!("{comments_path}?offset=10001"),
        "/api/articles?offset=1000000000".to_owned(),
        "/api/articles/feed?offset=10001".to_owned(),
    ] {
        let reply = app.get(&path, Some(&token)).await;
        assert_eq!(reply.status, 422, "{path}: {}", reply.body);
        assert!(is_error_shape(&reply.body), "{path}: {}", reply.body);
    }

    // 11 articles of 10 new tags each, and "hot" on three of them.
    for a in 0..11 {
        let mut tags: Vec<String> = (0..10).map(|t| format!("tag-{a}-{t}")).collect();
        if a < 2 {
            tags.push("hot".to_owned());
        }
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        app.create_article(&token, &format!("Tagged {a}"), &tags)
            .await;
    }
    let tags = app.get("/api/tags", None).await;
    let tags = tags.body["tags"].as_array().expect("a list");
    assert_eq!(tags.len(), 100, "capped");
    assert_eq!(tags[0], "hot", "the most used first");
}
