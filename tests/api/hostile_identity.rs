//! Names, emails and tags built to deceive: invisible, look-alike or
//! differently spelled versions of what exists, on any database locale.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_on, Reply, TestApp};
use crate::hostile::is_error_shape;
use crate::support::database::{connect, select_texts, server_url, with_database, TestDatabase};

pub(crate) async fn register(app: &TestApp, username: &str, email: &str) -> Reply {
    app.post(
        "/api/users",
        None,
        json!({"user": {"username": username, "email": email, "password": "password123"}}),
    )
    .await
}

pub(crate) fn status_and_error(reply: &Reply, field: &str) -> (u16, String) {
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

/// One name, one account: usernames and emails are unique whatever their
/// case and Unicode spelling (NFC), and names no profile URL could reach
/// (`.`, `..`) are refused.
#[tokio::test]
async fn names_are_unique_whatever_their_case_or_spelling_and_never_path_hostile() {
    let app = spawn_app().await;
    let register = |username: &str, email: &str| {
        app.post(
            "/api/users",
            None,
            json!({"user": {"username": username, "email": email, "password": "password123"}}),
        )
    };
    assert_eq!(register("Casey", "casey@example.org").await.status, 201);
    let again = register("casey", "other@example.org").await;
    assert_eq!(
        (again.status.as_u16(), again.error("username")),
        (409, "has already been taken")
    );
    let again = register("someone", "CASEY@Example.org").await;
    assert_eq!(
        (again.status.as_u16(), again.error("email")),
        (409, "has already been taken")
    );

    let composed = register("Zo\u{e9}", "zoe@example.org").await;
    assert_eq!(composed.status, 201, "{}", composed.body);
    let decomposed = register("Zoe\u{301}", "zoe2@example.org").await;
    assert_eq!(decomposed.status, 409, "{}", decomposed.body);
    let spelled = register("Jose\u{301}", "jose@example.org").await;
    assert_eq!(
        spelled.body["user"]["username"], "Jos\u{e9}",
        "stored in NFC"
    );

    for hostile in [".", "..", "..."] {
        let reply = register(hostile, &format!("dots{}@example.org", hostile.len())).await;
        assert_eq!(reply.status, 422, "{hostile}: {}", reply.body);
        assert!(is_error_shape(&reply.body));
    }

    let token = app.register("renamer").await;
    let rename = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "CASEY"}}),
        )
        .await;
    assert_eq!(rename.status, 422, "{}", rename.body);
}
