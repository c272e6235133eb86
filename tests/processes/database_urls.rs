//! Database URLs as operators write them, with the real binary: secrets
//! never printed, sockets, several hosts, libpq parameters; `/ready` when
//! the database fails.

use std::time::Duration;

use crate::operators::execute;
use crate::support::cluster::{free_port, TestCluster};
use crate::support::database::{server_url, TestDatabase};
use crate::support::process::{get_json, run_conduit, ConduitProcess, BOOT};

const SECRET: &str = "Winter-s3cret";

/// `postgres://conduit:2024/Winter-s3cret@host/db`: a URL reader takes
/// `conduit:2024` for the host and port and the rest for the path, the
/// driver takes `2024/Winter-s3cret` for the password. Refused at once,
/// with a line saying what to encode, and the password nowhere in the log.
#[tokio::test]
async fn a_password_with_a_raw_slash_is_refused_and_never_printed() {
    let port = free_port();
    let url = format!("postgres://conduit:2024/{SECRET}@127.0.0.1:{port}/conduit");
    let (status, output) = run_conduit(Some(&url), &[], &[("CONDUIT_DB_WAIT", "2")]).await;

    assert!(!status.success(), "{output}");
    assert!(!output.contains(SECRET), "{output}");
    assert!(!output.contains("2024/"), "{output}");
    assert!(
        output.contains("percent-encode the characters / ? # @ in the user name and password"),
        "{output}"
    );
}

/// The same password percent-encoded connects; while the database is
/// away, every retry line and the final error name the host, port and
/// database alone.
#[tokio::test]
async fn an_encoded_password_connects_and_stays_out_of_every_retry_line() {
    let unreachable = format!(
        "postgres://conduit:2024%2F{SECRET}@127.0.0.1:{}/conduit",
        free_port()
    );
    let mut server = ConduitProcess::spawn(&unreachable, &[], &[("CONDUIT_DB_WAIT", "2")]);
    server.wait_exit(BOOT).await.unwrap();
    let output = server.output();
    assert!(output.contains("database not reachable yet"), "{output}");
    assert!(!output.contains(SECRET), "{output}");
    assert!(
        !output.contains("2024/") && !output.contains("2024%2F"),
        "{output}"
    );

    let db = TestDatabase::create().await;
    let mut encoded = db.url.clone();
    encoded.set_password(Some("2024%2FWinter-s3cret")).unwrap();
    let mut server = ConduitProcess::spawn(encoded.as_str(), &[], &[("RUST_LOG", "debug")]);
    server.wait_ready(BOOT).await.unwrap();
    assert!(!server.output().contains(SECRET), "{}", server.output());
}

/// `/ready` says "database unavailable" to whoever asks; the database's
/// own words (which name the database) go to the log.
#[tokio::test]
async fn ready_keeps_the_database_error_for_the_log() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let mut admin = crate::support::database::connect(&server_url()).await;
    execute(
        &mut admin,
        &format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name),
    )
    .await;

    // The first probe may meet a connection the drop cut; a later one
    // opens a new connection and hears "database ... does not exist".
    for _ in 0..3 {
        let (status, body) = get_json(&format!("http://{address}/ready")).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["reason"], "database unavailable", "{body}");
        assert!(!body.to_string().contains(&db.name), "{body}");
    }
    let logged = server
        .wait_for_event(
            |e| {
                e["message"] == "/ready: database unavailable"
                    && e["error"]
                        .as_str()
                        .is_some_and(|error| error.contains("does not exist"))
            },
            Duration::from_secs(10),
        )
        .await;
    assert!(logged.is_some(), "{}", server.output());
}

/// A Unix socket directory in the query, as libpq and tokio-postgres
/// take it.
#[tokio::test]
async fn a_unix_socket_url_connects() {
    let cluster = TestCluster::with_database("conduit_socket").await;
    let url = format!(
        "postgres:///conduit_socket?host={}&port={}&user=conduit",
        cluster.dir().join("run").display(),
        cluster.port
    );
    let mut server = ConduitProcess::spawn(&url, &[], &[]);
    server.wait_ready(BOOT).await.unwrap();
}

/// Several hosts: the first is down, the second answers and is writable.
#[tokio::test]
async fn a_multi_host_url_falls_through_to_the_host_that_answers() {
    let db = TestDatabase::create().await;
    let live = db.url.port().unwrap_or(5432);
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{},127.0.0.1:{live}/{}?target_session_attrs=read-write",
        db.url.username(),
        db.url.password().unwrap_or_default(),
        free_port(),
        db.name
    );
    let mut server = ConduitProcess::spawn(&url, &[], &[]);
    server.wait_ready(BOOT).await.unwrap();
}

/// What tokio-postgres cannot do is refused by name at start.
#[tokio::test]
async fn libpq_parameters_without_libpq_are_named() {
    let (status, output) = run_conduit(
        Some("postgres://conduit@127.0.0.1:5432/conduit?sslcert=/etc/client.pem"),
        &[],
        &[],
    )
    .await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("`sslcert` is a libpq parameter that conduit does not support"),
        "{output}"
    );
}
