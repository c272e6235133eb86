//! The developer and container workflow around the binary: `make reset-db`
//! with a server connected, and what can be checked of the container files
//! without a Docker engine.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{texts, ConduitProcess, TestDatabase};
use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn reset_db_succeeds_while_a_server_is_connected() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_DB_POOL_SIZE", "4")]);
    let address = server.wait_ready(Duration::from_secs(90)).await.unwrap();
    let mut conn = db.connect().await;
    texts(&mut conn, "SELECT 'hold a connection open' AS value").await;

    // --locked-schema: the test must not rewrite src/schema.rs.
    let output = Command::new("make")
        .args([
            "--no-print-directory",
            "-C",
            ROOT,
            "reset-db",
            "DIESEL_MIGRATION_FLAGS=--locked-schema",
        ])
        .env("DATABASE_URL", db.url())
        .output()
        .expect("run make");

    assert!(
        output.status.success(),
        "make reset-db failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut conn = db.connect().await;
    let versions = texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations ORDER BY version",
    )
    .await;
    assert_eq!(versions, ["001", "002", "003"]);
    // The server's pooled connections were cut; it recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = reqwest::get(format!("http://{address}/ready")).await;
        if matches!(&ready, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again after reset-db");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn compose() -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join("compose.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("compose.yaml is YAML")
}

#[test]
fn compose_starts_the_app_after_a_healthy_database_with_a_named_volume() {
    let compose = compose();
    let db = &compose["services"]["db"];
    let app = &compose["services"]["app"];

    assert!(db["image"].as_str().unwrap().starts_with("postgres:15"));
    let check = serde_yaml::to_string(&db["healthcheck"]["test"]).unwrap();
    assert!(check.contains("pg_isready"), "{check}");
    let volume = db["volumes"][0].as_str().unwrap();
    let (name, mount) = volume.split_once(':').unwrap();
    assert_eq!(mount, "/var/lib/postgresql/data");
    assert!(
        compose["volumes"].get(name).is_some(),
        "{name} is a named volume"
    );

    assert_eq!(app["build"].as_str(), Some("."));
    assert_eq!(
        app["depends_on"]["db"]["condition"].as_str(),
        Some("service_healthy")
    );
    let env = &app["environment"];
    let url = env["DATABASE_URL"].as_str().unwrap();
    assert!(
        url.starts_with("postgres://") && url.contains("@db:5432/"),
        "{url}"
    );
    let user = db["environment"]["POSTGRES_USER"].as_str().unwrap();
    let password = db["environment"]["POSTGRES_PASSWORD"].as_str().unwrap();
    let database = db["environment"]["POSTGRES_DB"].as_str().unwrap();
    assert_eq!(
        url,
        format!("postgres://{user}:{password}@db:5432/{database}")
    );
    assert_eq!(env["CONDUIT_LISTEN"].as_str(), Some("0.0.0.0:8080"));
    assert_eq!(env["CONDUIT_MIGRATE_ON_START"].as_str(), Some("true"));
}

#[test]
fn dockerfile_builds_locked_and_runs_unprivileged_with_a_healthcheck() {
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();

    assert!(stages >= 2, "multi-stage");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile.find("COPY Cargo.toml Cargo.lock").unwrap()
            < dockerfile.find("COPY src src").unwrap(),
        "dependencies are built before the code is copied"
    );
    assert!(dockerfile.contains("USER conduit"));
    assert!(dockerfile.contains(r#"CMD ["conduit", "healthcheck"]"#));
    assert!(dockerfile.contains(r#"CMD ["conduit", "serve"]"#));
    assert!(dockerfile.contains("CONDUIT_LISTEN=0.0.0.0:8080"));
}
