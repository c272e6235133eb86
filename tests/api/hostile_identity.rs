//! Names, emails and tags built to deceive: invisible, look-alike or
//! differently spelled versions of what exists, on any database locale.

use serde_json::json;

use crate::database::{connect, select_texts, server_url, with_database, TestDatabase};
use crate::helpers::{spawn_app, spawn_app_on, Reply, TestApp};

async fn register(app: &TestApp, username: &str, email: &str) -> Reply {
    app.post(
        "/api/users",
        None,
        json!({"user": {"username": username, "email": email, "password": "password123"}}),
    )
    .await
}

fn status_and_error(reply: &Reply, field: &str) -> (u16, String) {
    let message = reply.body["errors"][field][0]
        .as_str()
        .unwrap_or_else(|| panic!("no error for {field:?} in {} {}", reply.status, reply.body));
    (reply.status.as_u16(), message.to_owned())
}

#[tokio::test]
async fn names_of_invisible_characters_are_refused() {
    let app = spawn_app().await;
    for (i, hostile) in [
        "\u{3164}",
        "\u{FFA0}\u{FFA0}",
        "demo\u{3164}",
        "al\u{200B}ice",
        "\u{115F}bob",
    ]
    .into_iter()
    .enumerate()
    {
        let reply = register(&app, hostile, &format!("invisible{i}@example.org")).await;
        assert_eq!(
            status_and_error(&reply, "username"),
            (
                422,
                "can't contain invisible or control characters".to_owned()
            ),
            "{hostile:?}"
        );
    }
}

/// The seeded `demo` account (migration 002, keyed at boot) and a new one
/// alike: other cases, widths and scripts that look the same are taken.
#[tokio::test]
async fn names_that_look_like_an_existing_one_are_taken() {
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "alice", "alice@example.org").await.status,
        201
    );
    for (i, alike) in [
        "ＤＥＭＯ",
        "ｄｅｍｏ",
        "d\u{435}mo",
        "D\u{415}MO",
        "dem0",
        "DEMO",
        "\u{430}lice",
        "ALICE",
        "ａｌｉｃｅ",
        "a1ice",
    ]
    .into_iter()
    .enumerate()
    {
        let reply = register(&app, alike, &format!("alike{i}@example.org")).await;
        assert_eq!(
            status_and_error(&reply, "username"),
            (409, "has already been taken".to_owned()),
            "{alike:?}"
        );
    }
    let token = app.register("mallory").await;
    let rename = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "d\u{435}mo"}}),
        )
        .await;
    assert_eq!(
        status_and_error(&rename, "username"),
        (422, "has already been taken".to_owned())
    );
    assert_eq!(
        register(&app, "alicia", "alicia@example.org").await.status,
        201,
        "a different name is still free"
    );
}

/// The spec lists 200, 401 and 422 for PUT /user: a taken name is a 422,
/// with the body a registration's 409 has.
#[tokio::test]
async fn renaming_to_a_taken_name_is_422_with_the_409_body() {
    let app = spawn_app().await;
    app.register("frank").await;
    let token = app.register("grace").await;
    for (field, value) in [("username", "frank"), ("email", "FRANK@example.org")] {
        let reply = app
            .put("/api/user", Some(&token), json!({"user": {field: value}}))
            .await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert_eq!(
            reply.body,
            json!({"errors": {field: ["has already been taken"]}})
        );
    }
}

#[tokio::test]
async fn profiles_are_found_the_way_names_are_taken() {
    let app = spawn_app().await;
    let token = app.register("follower").await;
    for spelling in ["DEMO", "Demo", "ＤＥＭＯ"] {
        let profile = app.get(&format!("/api/profiles/{spelling}"), None).await;
        assert_eq!(profile.status, 200, "{spelling}: {}", profile.body);
        assert_eq!(profile.body["profile"]["username"], "demo");
    }
    let follow = app
        .post("/api/profiles/DEMO/follow", Some(&token), json!({}))
        .await;
    assert_eq!(follow.status, 200, "{}", follow.body);
    assert_eq!(follow.body["profile"]["username"], "demo");
    assert_eq!(follow.body["profile"]["following"], true);
    let seen = app.get("/api/profiles/demo", Some(&token)).await;
    assert_eq!(seen.body["profile"]["following"], true);
    let unfollow = app.delete("/api/profiles/Demo/follow", Some(&token)).await;
    assert_eq!(unfollow.status, 200, "{}", unfollow.body);
    assert_eq!(unfollow.body["profile"]["following"], false);
    assert_eq!(app.get("/api/profiles/nobody", None).await.status, 404);
}

/// A database created with LC_CTYPE=C, whose lower() folds only ASCII.
async fn c_locale_database() -> TestDatabase {
    let name = format!("conduit_test_{}", uuid::Uuid::new_v4().simple());
    let server = server_url();
    let mut admin = connect(&server).await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 LC_CTYPE 'C' LC_COLLATE 'C'"
        )),
        &mut admin,
    )
    .await
    .expect("create a C-locale database");
    let url = with_database(&server, &name);
    TestDatabase { name, url }
}

#[tokio::test]
async fn case_is_folded_the_same_on_a_c_locale_database() {
    let app = spawn_app_on(c_locale_database().await, &[]).await;
    let mut conn = app.db.connect().await;
    assert_eq!(
        select_texts(&mut conn, "SELECT lower('É') AS value").await,
        ["É"],
        "the database folds only ASCII"
    );
    assert_eq!(
        register(&app, "Émile", "ÖZIL@example.org").await.status,
        201
    );
    let name = register(&app, "émile", "emile@example.org").await;
    assert_eq!(
        status_and_error(&name, "username"),
        (409, "has already been taken".to_owned())
    );
    let email = register(&app, "ozil", "özil@example.org").await;
    assert_eq!(
        status_and_error(&email, "email"),
        (409, "has already been taken".to_owned())
    );
    let login = app.login("özil@EXAMPLE.org", "password123").await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.body["user"]["username"], "Émile");
}

/// Accounts written before migration 012 (or by a server that predates
/// it) have no keys: the next boot gives them theirs, the first account
/// of two that older rules let look alike keeps its key, and both go on
/// working.
#[tokio::test]
async fn a_boot_keys_accounts_written_without_keys() {
    let app = spawn_app().await;
    let mut conn = app.db.connect().await;
    for (name, email) in [("bob", "bob@example.org"), ("ｂｏｂ", "BOB2@example.org")] {
        select_texts(
            &mut conn,
            &format!(
                "INSERT INTO users (username, email, password_hash) \
                 VALUES ('{name}', '{email}', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g') \
                 RETURNING id::text AS value"
            ),
        )
        .await;
    }
    drop(conn);

    let app = spawn_app_on(app.stop().await, &[]).await;
    let mut conn = app.db.connect().await;
    assert_eq!(
        select_texts(
            &mut conn,
            "SELECT username || ' ' || coalesce(username_folded, '-') || ' ' \
             || coalesce(username_skeleton, '-') || ' ' || identity_keys_version AS value \
             FROM users WHERE username IN ('bob', 'ｂｏｂ') ORDER BY id"
        )
        .await,
        ["bob bob bob 1", "ｂｏｂ - - 1"]
    );
    for alike in ["BOB", "b0b"] {
        let reply = register(&app, alike, &format!("{alike}3@example.org")).await;
        assert_eq!(
            status_and_error(&reply, "username"),
            (409, "has already been taken".to_owned()),
            "{alike}"
        );
    }
    for exact in ["bob", "ｂｏｂ"] {
        let profile = app.get(&format!("/api/profiles/{exact}"), None).await;
        assert_eq!(profile.body["profile"]["username"], exact);
    }
}

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
