//! Tags, bios and images built to deceive: tags stored in NFC, characters
//! that show nothing refused in tags, names, emails and texts, one author
//! unable to flood the popular tags, images only as http(s) URLs.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::hostile_identity::{register, status_and_error};

#[tokio::test]
async fn tags_are_stored_in_nfc_and_refuse_invisible_characters() {
    let app = spawn_app().await;
    let token = app.register("writer").await;
    app.create_article(&token, "One", &["cafe\u{301}"]).await;
    app.create_article(&token, "Two", &["caf\u{e9}"]).await;
    let tags = app.get("/api/tags", None).await;
    let cafes: Vec<_> = tags.body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.as_str().is_some_and(|t| t.starts_with("caf")))
        .collect();
    assert_eq!(cafes, [&json!("caf\u{e9}")]);
    let listed = app.get("/api/articles?tag=cafe%CC%81", None).await;
    assert_eq!(listed.body["articlesCount"], 2, "{}", listed.body);

    for hostile in [
        "new\nline",
        "bell\u{7}",
        "\u{202E}gnp.exe",
        "zero\u{200B}width",
    ] {
        let reply = app
            .post(
                "/api/articles",
                Some(&token),
                json!({"article": {"title": "t", "description": "d", "body": "b", "tagList": [hostile]}}),
            )
            .await;
        assert_eq!(
            status_and_error(&reply, "tagList"),
            (
                422,
                "tags can't contain invisible or control characters".to_owned()
            ),
            "{hostile:?}"
        );
    }
}

/// One account posting many articles weighs as one author in the popular
/// tags: a tag two people use ranks above all of its tags.
#[tokio::test]
async fn one_author_cannot_flood_the_popular_tags() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_article(&alice, "Alice on rust", &["rust"]).await;
    app.create_article(&bob, "Bob on rust", &["rust"]).await;
    let flooder = app.register("flooder").await;
    for i in 0..20 {
        app.create_article(&flooder, &format!("Spam {i}"), &["spam", "ads", "buy"])
            .await;
    }
    let tags = app.get("/api/tags", None).await;
    assert_eq!(tags.body["tags"][0], "rust", "{}", tags.body);
}

#[tokio::test]
async fn selectors_and_marks_no_character_takes_are_refused_in_tags_names_and_emails() {
    let app = spawn_app().await;
    let token = app.register("writer").await;
    for (i, tag) in ["rust\u{FE0F}", "\u{301}rust", "ru\u{336}st", "😀\u{FE0F}"]
        .into_iter()
        .enumerate()
    {
        let reply = app
            .post(
                "/api/articles",
                Some(&token),
                json!({"article": {"title": format!("t{i}"), "description": "d", "body": "b", "tagList": [tag]}}),
            )
            .await;
        let (status, message) = status_and_error(&reply, "tagList");
        assert_eq!(status, 422, "{tag:?}");
        assert!(
            message.contains("combining mark or variation selector"),
            "{message}"
        );
    }
    let reply = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "hearts", "description": "d", "body": "b", "tagList": ["❤️"]}}),
        )
        .await;
    assert_eq!(
        reply.status.as_u16(),
        201,
        "an emoji takes its selector: {}",
        reply.body
    );

    let reply = register(&app, "mallory\u{FE0F}", "mallory@example.org").await;
    assert_eq!(status_and_error(&reply, "username").0, 422);
    let reply = register(&app, "mallory", "writer\u{FE0F}@example.org").await;
    assert_eq!(
        status_and_error(&reply, "email"),
        (422, "is invalid".to_owned())
    );
}

#[tokio::test]
async fn texts_that_show_nothing_are_refused_like_blank_ones() {
    let app = spawn_app().await;
    let token = app.register("writer").await;
    let reply = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "\u{200B}\u{2060}", "description": "\u{301}\u{301}", "body": "\u{FE0F}", "tagList": []}}),
        )
        .await;
    let braille = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "\u{2800}\u{2800}", "description": "d", "body": "b", "tagList": ["\u{2800}"]}}),
        )
        .await;
    assert_eq!(
        braille.body["errors"],
        json!({
            "title": ["can't contain invisible or control characters"],
            "tagList": ["tags can't contain invisible or control characters"]
        })
    );
    assert_eq!(reply.status.as_u16(), 422, "{}", reply.body);
    assert_eq!(
        reply.body["errors"],
        json!({
            "title": ["can't contain invisible or control characters"],
            "description": ["can't be blank"],
            "body": ["can't be blank"]
        })
    );
}

#[tokio::test]
async fn a_profile_image_must_be_an_http_or_https_url() {
    let app = spawn_app().await;
    let token = app.register("pictured").await;
    for hostile in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>1</script>",
        "photo.jpg",
    ] {
        let reply = app
            .put(
                "/api/user",
                Some(&token),
                json!({"user": {"image": hostile}}),
            )
            .await;
        assert_eq!(
            status_and_error(&reply, "image"),
            (422, "must be an http or https URL".to_owned()),
            "{hostile}"
        );
    }
    for hostile in [
        "https://exam\u{200B}ple.org/a.png",
        "https://example.org/\u{202E}gnp.exe",
    ] {
        let reply = app
            .put(
                "/api/user",
                Some(&token),
                json!({"user": {"image": hostile}}),
            )
            .await;
        assert_eq!(status_and_error(&reply, "image").0, 422, "{hostile:?}");
    }
    let reply = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"image": "https://example.org/me.png"}}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["user"]["image"], "https://example.org/me.png");
}
