//! Security headers on every response; CORS for the listed origins only.

use crate::helpers::spawn_app;

#[tokio::test]
async fn responses_carry_security_headers_and_cors_only_for_listed_origins() {
    let closed = spawn_app().await;
    let open = crate::helpers::spawn_app_with(&["--cors-origins", "https://app.example.org"]).await;
    let preflight = |app: &crate::helpers::TestApp, origin: &str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/articles", app.address),
            )
            .header("Origin", origin.to_owned())
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };

    let api = closed
        .client
        .get(format!("{}/api/tags", closed.address))
        .send()
        .await
        .unwrap();
    let docs = closed
        .client
        .get(format!("{}/api/docs/", closed.address))
        .send()
        .await
        .unwrap();
    let no_cors = preflight(&closed, "https://app.example.org").await.unwrap();
    let allowed = preflight(&open, "https://app.example.org").await.unwrap();
    let other = preflight(&open, "https://evil.example.net").await.unwrap();

    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert_eq!(api.headers()["referrer-policy"], "no-referrer");
    assert!(api.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let docs_policy = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        docs_policy.contains("script-src 'self'") && !docs_policy.contains("http"),
        "{docs_policy}"
    );
    assert!(no_cors
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
