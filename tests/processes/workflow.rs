//! The developer workflow around the binary: `make reset-db` with a server
//! connected. The containers are tested for real by `make docker-test`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::database::{select_texts, TestDatabase};
use crate::support::embedded;
use crate::support::process::ConduitProcess;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn reset_db_succeeds_while_a_server_is_connected() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_DB_POOL_SIZE", "4")]);
    let address = server.wait_ready(Duration::from_secs(90)).await.unwrap();
    let mut conn = db.connect().await;
    select_texts(&mut conn, "SELECT 'hold a connection open' AS value").await;

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
    let versions = select_texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations ORDER BY version",
    )
    .await;
    assert_eq!(versions, embedded::versions());
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
