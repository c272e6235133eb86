//! `spawn_app()`: the real application, in process, on a fresh database of
//! its own, with typed helpers for the requests the tests make.

use std::time::Duration;

use clap::Parser;
use conduit::cli::Cli;
use conduit::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub use crate::support::database::TestDatabase;
use crate::support::http;

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

/// A server on a fresh database, in development mode.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server on a fresh migrated database with extra flags, e.g. `["--env", "production"]`.
pub async fn spawn_app_with(flags: &[&str]) -> TestApp {
    let db = TestDatabase::migrated().await;
    spawn_app_on(db, flags).await
}

/// A server on an existing database (to restart one on the same data).
pub async fn spawn_app_on(db: TestDatabase, flags: &[&str]) -> TestApp {
    let url = db.url();
    let mut args = vec![
        "conduit",
        "--database-url",
        url.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--db-pool-size",
        "4",
    ];
    args.extend_from_slice(flags);
    let cli = Cli::try_parse_from(args).expect("valid test flags");
    let settings = cli.settings.settings().expect("valid test settings");
    let application = Application::build(settings).await.expect("the app builds");
    let address = format!("http://{}", application.address());
    let handle = application.handle();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        db,
        client: reqwest::Client::new(),
        handle,
    }
}

/// Polls `sql` (one column named `value`) until it returns `expected`
/// (true) or 30 s pass (false): for what the server does in the
/// background soon after boot.
pub async fn texts_become(
    conn: &mut diesel_async::AsyncPgConnection,
    sql: &str,
    expected: &[&str],
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if crate::support::database::select_texts(conn, sql).await == expected {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A response, its status and its JSON body (Null when there is none).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The first message for `field` in an error body.
    pub fn error(&self, field: &str) -> &str {
        self.body["errors"][field][0]
            .as_str()
            .unwrap_or_else(|| panic!("no error for {field:?} in {} {}", self.status, self.body))
    }
}

impl TestApp {
    /// Stops the server (in-flight requests finish) and hands back the database.
    pub async fn stop(self) -> TestDatabase {
        self.handle.stop(true).await;
        self.db
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .timeout(Duration::from_secs(30));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Reply { status, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Registers `name` (email `name@example.org`, password `password123`);
    /// returns the token.
    pub async fn register(&self, name: &str) -> String {
        http::register(&self.client, &self.address, name).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/users/login",
            None,
            json!({"user": {"email": email, "password": password}}),
        )
        .await
    }

    /// Creates an article; returns its slug.
    pub async fn create_article(&self, token: &str, title: &str, tags: &[&str]) -> String {
        let reply = self
            .post(
                "/api/articles",
                Some(token),
                json!({"article": {"title": title, "description": "about it", "body": "the body", "tagList": tags}}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["article"]["slug"].as_str().unwrap().to_owned()
    }

    /// SQL statements the server's pool has run so far.
    pub async fn queries_so_far(&self) -> u64 {
        http::metrics(&self.client, &self.address)
            .await
            .lines()
            .find_map(|line| line.strip_prefix("conduit_db_queries_total "))
            .and_then(|value| value.trim().parse().ok())
            .expect("conduit_db_queries_total in /metrics")
    }

    /// How many SQL statements one request costs.
    pub async fn queries_for(&self, path: &str, token: Option<&str>) -> u64 {
        let before = self.queries_so_far().await;
        let reply = self.get(path, token).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        self.queries_so_far().await - before
    }
}
