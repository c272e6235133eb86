//! The OpenAPI document covers the spec and every registered route, and
//! the docs page needs nothing from the network.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

fn operations(paths: &serde_json::Map<String, Value>, prefix: &str) -> BTreeSet<(String, String)> {
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (format!("{prefix}{path}"), m.to_string()))
        })
        .collect()
}

async fn document(app: &crate::helpers::TestApp) -> Value {
    let reply = app.get("/api/openapi.json", None).await;
    assert_eq!(reply.status, 200);
    reply.body
}

#[tokio::test]
async fn the_document_has_every_operation_of_the_realworld_spec_and_the_extensions() {
    let app = spawn_app().await;
    let spec_path = format!(
        "{}/../shared/conformance/realworld/openapi.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec_text = std::fs::read_to_string(&spec_path).unwrap_or_else(|e| {
        panic!("{spec_path}: {e} (the shared folder sits beside the checkout)")
    });
    let spec: Value = serde_yaml::from_str(&spec_text).unwrap();
    let ours = document(&app).await;

    let expected = operations(spec["paths"].as_object().unwrap(), "/api");
    let documented = operations(ours["paths"].as_object().unwrap(), "");

    assert_eq!(expected.len(), 19);
    let missing: Vec<_> = expected.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "spec operations missing from /api/openapi.json: {missing:?}"
    );
    for extra in [
        ("/api/user/session", "delete"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            documented.contains(&(extra.0.to_owned(), extra.1.to_owned())),
            "{extra:?} is not documented"
        );
    }
    let schemes = &ours["components"]["securitySchemes"]["Token"];
    assert_eq!(schemes["in"], "header");
    assert!(ours["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let ours = document(&app).await;

    for (path, method) in operations(ours["paths"].as_object().unwrap(), "") {
        let concrete = path
            .replace("{username}", "demo")
            .replace("{slug}", "welcome-to-conduit")
            .replace("{id}", "1");
        let response = app
            .client
            .request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{concrete}", app.address),
            )
            .send()
            .await
            .unwrap();
        let reply: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            reply["errors"]["route"].is_null(),
            "{method} {path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let redirect = client
        .get(format!("{}/api/docs", app.address))
        .send()
        .await
        .unwrap();
    let page = client
        .get(format!("{}/api/docs/", app.address))
        .send()
        .await
        .unwrap();
    let status = page.status();
    let html = page.text().await.unwrap();
    let script = client
        .get(format!("{}/api/docs/swagger-ui-bundle.js", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(redirect.status(), 308);
    assert_eq!(status, 200);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing from a CDN: {html}"
    );
    assert_eq!(script.status(), 200);
}
