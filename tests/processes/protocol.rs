//! The protocol against the real binary: a flood of connections under a
//! small descriptor limit (`prlimit`), and what a client's malformed
//! request leaves in the log.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::database::TestDatabase;
use crate::support::process::{ConduitProcess, BOOT};
use crate::support::raw_http::{half_sent_body, read_response, read_until_closed, send};

const ANSWER: Duration = Duration::from_secs(10);
const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: conduit.test\r\n\r\n";
const READY: &[u8] = b"GET /ready HTTP/1.1\r\nHost: conduit.test\r\n\r\n";

async fn ask(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.expect("send");
    read_response(stream, ANSWER)
        .await
        .map(|(head, _)| head)
        .unwrap_or_default()
}

#[tokio::test]
async fn with_few_descriptors_a_flood_is_refused_while_served_connections_go_on() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn_with_descriptor_limit(
        &db.url(),
        128,
        &[
            // The flood holds its connections for the whole test, and
            // comes from one address: only the process's limit stops it.
            ("CONDUIT_BODY_TIMEOUT", "10m"),
            ("CONDUIT_MAX_CONNECTIONS_PER_ADDRESS", "0"),
            ("CONDUIT_DB_POOL_SIZE", "4"),
        ],
    );
    let address = server.wait_ready(BOOT).await.unwrap();
    let mut served = TcpStream::connect(address).await.unwrap();
    assert!(ask(&mut served, HEALTH).await.starts_with("HTTP/1.1 200"));

    // More connections than the process has descriptors, each holding a
    // body that never comes.
    let mut flood = Vec::new();
    for _ in 0..200 {
        if let Ok(mut stream) = TcpStream::connect(address).await {
            let _ = stream
                .write_all(&half_sent_body("/api/users/login", 100, "{"))
                .await;
            flood.push(stream);
        }
    }

    // What was being served goes on: a database round trip included.
    let head = ask(&mut served, HEALTH).await;
    assert!(head.starts_with("HTTP/1.1 200"), "served: {head:?}");
    let head = ask(&mut served, READY).await;
    assert!(head.starts_with("HTTP/1.1 200"), "served /ready: {head:?}");

    // A newcomer is refused at once, not left waiting in the backlog.
    let mut newcomer = send(address, HEALTH).await;
    let (text, closed) = read_until_closed(&mut newcomer, ANSWER).await;
    assert!(
        text.starts_with("HTTP/1.1 503"),
        "newcomer during the flood: {text:?}\n{}",
        server.output()
    );
    assert!(closed);

    // Once the flood is gone, newcomers are served again.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut again = TcpStream::connect(address).await.unwrap();
        if ask(&mut again, HEALTH).await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "not served after the flood");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.try_exit_status().is_none(), "{}", server.output());
    let errors = server.errors();
    assert!(errors.is_empty(), "errors in the log: {errors:#?}");
    let warned = server.log_events().iter().any(|event| {
        event["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("refused") && m.contains("new connection"))
    });
    assert!(warned, "the refusals were not logged:\n{}", server.output());
}

#[tokio::test]
async fn a_malformed_header_is_the_clients_fault_not_an_error_in_our_log() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(&db.url(), &[], &[]);
    let address = server.wait_ready(BOOT).await.unwrap();
    let mut stream = send(
        address,
        b"GET /health HTTP/1.1\r\nHost: conduit.test\r\nthis is not a header\r\n\r\n",
    )
    .await;
    let (text, _) = read_until_closed(&mut stream, ANSWER).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    let noted = server
        .wait_for_event(
            |event| {
                event["message"] == "a client connection ended on a protocol or network error"
                    && event["level"] == "INFO"
            },
            ANSWER,
        )
        .await;
    assert!(noted.is_some(), "not logged:\n{}", server.output());
    let errors = server.errors();
    assert!(errors.is_empty(), "errors in the log: {errors:#?}");
}
