//! TLS to PostgreSQL with libpq's `sslmode`, against a server of the test's
//! own that has `ssl=on` and accepts TCP clients only over TLS
//! (`hostssl`). The CA and the server certificate are made here, with the
//! openssl command-line tool (test time only: the binary has no OpenSSL).

use std::path::Path;
use std::process::Command;

use conduit::db::tls::PgTls;
use conduit::db::url::PgUrl;
use diesel_async::AsyncPgConnection;

use crate::support::cluster::{free_port, TestCluster};
use crate::support::database::select_texts;
use crate::support::process::{get_json, ConduitProcess, BOOT};

/// Inside the topology range 55100-55199 (shared machines: away from the
/// ports other worktrees use).
const TLS_PORT: u16 = 55101;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command-line tool (test time only)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `name`.pem and `name`.key: a CA certificate and its key.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// server.pem/server.key signed by `ca`, valid for localhost and 127.0.0.1.
fn make_server_certificate(dir: &Path, ca: &str) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("the server key is private");
}

/// A cluster with TLS on, reachable over TCP only with TLS.
fn tls_cluster() -> TestCluster {
    tls_cluster_with(
        TLS_PORT,
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    )
}

/// As [`tls_cluster`], on `port`, with `hba` as its pg_hba.conf.
fn tls_cluster_with(port: u16, hba: &'static str) -> TestCluster {
    TestCluster::start_with(
        port,
        vec![
            "ssl=on".into(),
            "ssl_cert_file=../server.pem".into(),
            "ssl_key_file=../server.key".into(),
        ],
        |dir| {
            make_ca(dir, "test-ca");
            make_ca(dir, "other-ca");
            make_server_certificate(dir, "test-ca");
            std::fs::write(dir.join("data/pg_hba.conf"), hba).expect("write pg_hba.conf");
        },
    )
}

/// `url` with its TLS parameters, connected the way the binary connects.
async fn connect_tls(url: &str) -> AsyncPgConnection {
    let (url, parameters) = PgUrl::parse(url).expect("a URL");
    let tls = PgTls::from_parameters(&parameters).expect("valid TLS parameters");
    conduit::db::connect(&url.with_application_name("conduit-test"), &tls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", url.target()))
}

/// The last line a failed command printed for a person (not a JSON log line).
fn error_line(process: &ConduitProcess) -> String {
    let lines: Vec<String> = process
        .lines()
        .into_iter()
        .filter(|line| line.starts_with("conduit: "))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line that says why:\n{}",
        process.output()
    );
    lines[0].clone()
}

#[tokio::test]
async fn tls_to_postgresql_follows_libpq_sslmode() {
    let cluster = tls_cluster();
    let base = format!("postgres://conduit@localhost:{TLS_PORT}");
    let ca = cluster.dir().join("test-ca.pem");
    let other_ca = cluster.dir().join("other-ca.pem");
    let mut admin = connect_tls(&format!("{base}/postgres?sslmode=require")).await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("CREATE DATABASE conduit_tls"),
        &mut admin,
    )
    .await
    .expect("create the database");

    // require: the server's pool and migration connections are encrypted.
    let mut server =
        ConduitProcess::spawn(&format!("{base}/conduit_tls?sslmode=require"), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let (status, _) = get_json(&format!("http://{address}/api/articles")).await;
    assert_eq!(status, 200, "{}", server.output());
    let encrypted = select_texts(
        &mut admin,
        "SELECT s.ssl::text || ' ' || s.version AS value FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'conduit@%'",
    )
    .await;
    assert!(!encrypted.is_empty(), "the pool holds connections");
    assert!(
        encrypted.iter().all(|row| row.starts_with("true TLSv1.")),
        "every pooled connection is encrypted: {encrypted:?}"
    );
    server.signal("TERM");
    assert!(
        server.wait_exit(BOOT).await.unwrap().success(),
        "{}",
        server.output()
    );

    // verify-full with the right CA and host name: the CLI commands too.
    let verified = format!(
        "{base}/conduit_tls?sslmode=verify-full&sslrootcert={}",
        ca.display()
    );
    let mut status = ConduitProcess::spawn(&verified, &["migrate", "status", "--check"], &[]);
    assert!(
        status.wait_exit(BOOT).await.unwrap().success(),
        "{}",
        status.output()
    );

    // verify-full naming another host (the address is still ours): refused
    // at once, without retrying for the whole wait.
    let wrong_name = format!(
        "postgres://conduit@db.example.org:{TLS_PORT}/conduit_tls?hostaddr=127.0.0.1\
         &sslmode=verify-full&sslrootcert={}",
        ca.display()
    );
    let mut server = ConduitProcess::spawn(&wrong_name, &[], &[("CONDUIT_DB_WAIT", "600")]);
    assert!(!server.wait_exit(BOOT).await.unwrap().success());
    let line = error_line(&server);
    assert!(line.contains("TLS certificate was refused"), "{line}");
    assert!(line.contains("not valid for name"), "{line}");

    // A CA that did not sign the server's certificate.
    let unknown_ca = format!(
        "{base}/conduit_tls?sslmode=verify-ca&sslrootcert={}",
        other_ca.display()
    );
    let mut server = ConduitProcess::spawn(&unknown_ca, &[], &[("CONDUIT_DB_WAIT", "600")]);
    assert!(!server.wait_exit(BOOT).await.unwrap().success());
    let line = error_line(&server);
    assert!(line.contains("TLS certificate was refused"), "{line}");
    assert!(line.contains("UnknownIssuer"), "{line}");

    // disable, against a server that takes TCP clients only over TLS.
    let mut server = ConduitProcess::spawn(
        &format!("{base}/conduit_tls?sslmode=disable"),
        &[],
        &[("CONDUIT_DB_WAIT", "1")],
    );
    assert!(!server.wait_exit(BOOT).await.unwrap().success());
    let line = error_line(&server);
    assert!(line.contains("no encryption"), "{line}");
}

/// Over TLS, a SCRAM password exchange binds the channel
/// (SCRAM-SHA-256-PLUS, `tls-server-end-point`): with
/// `channel_binding=require` tokio-postgres connects only if it did, and
/// the server checks the binding against its own certificate.
#[tokio::test]
async fn scram_over_tls_uses_channel_binding() {
    let port = free_port();
    let cluster = tls_cluster_with(
        port,
        "local all all trust\nhostssl all conduit 127.0.0.1/32 trust\n\
         hostssl all all 127.0.0.1/32 scram-sha-256\n",
    );
    let mut admin = connect_tls(&format!(
        "postgres://conduit@localhost:{port}/postgres?sslmode=require"
    ))
    .await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("CREATE ROLE bound LOGIN PASSWORD 'bound-s3cret'"),
        &mut admin,
    )
    .await
    .expect("create a role with a SCRAM password");

    let base = format!("postgres://bound:bound-s3cret@localhost:{port}/postgres");
    let ca = cluster.dir().join("test-ca.pem");
    for url in [
        // The certificate unchecked: binding is what detects a relay.
        format!("{base}?sslmode=require&channel_binding=require"),
        format!(
            "{base}?sslmode=verify-full&sslrootcert={}&channel_binding=require",
            ca.display()
        ),
    ] {
        let mut conn = connect_tls(&url).await;
        let user = select_texts(&mut conn, "SELECT current_user::text AS value").await;
        assert_eq!(user, ["bound"], "{url}");
    }

    // The password is really checked (SCRAM, not trust).
    let (url, parameters) = PgUrl::parse(&format!(
        "postgres://bound:wrong@localhost:{port}/postgres?sslmode=require&channel_binding=require"
    ))
    .expect("a URL");
    let tls = PgTls::from_parameters(&parameters).expect("valid TLS parameters");
    let error = conduit::db::connect(&url.with_application_name("conduit-test"), &tls)
        .await
        .err()
        .expect("a wrong password is refused");
    assert!(
        error.to_string().contains("password authentication failed"),
        "{error}"
    );
}
