//! Connections a hostile client holds on to: bodies and heads sent too
//! slowly, more connections than an address may hold, bodies no route
//! reads, pipelined requests whose answers are never read.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app, spawn_app_with};
use crate::hostile_protocol::{post_raw, ANSWER};
use crate::support::raw_http::{
    connect_from, half_sent_body, post_json, read_response, read_until_closed, send, socket_address,
};

#[tokio::test]
async fn a_body_sent_too_slowly_is_answered_408_and_its_connection_closed() {
    // The default deadline (10 s): a server without one holds the
    // connection for as long as the client likes.
    let app = spawn_app().await;
    let server = socket_address(&app.address);
    let started = Instant::now();
    let mut stream = send(
        server,
        &half_sent_body("/api/users/login", 100, "{\"user\":"),
    )
    .await;
    let (text, closed) = read_until_closed(&mut stream, Duration::from_secs(60)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("was not received in time"), "{text}");
    assert!(closed, "the connection stayed open after the 408");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "answered before the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_address_holding_its_share_of_connections_is_refused_while_others_are_served() {
    // The held bodies outlast the test, however slow the host.
    let app = spawn_app_with(&[
        "--body-timeout",
        "5m",
        "--max-connections-per-address",
        "64",
    ])
    .await;
    let server = socket_address(&app.address);
    let crowded: IpAddr = "127.0.0.1".parse().unwrap();
    // Its share, each held by a body still on its way.
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut stream = connect_from(crowded, server).await;
        stream
            .write_all(&half_sent_body("/api/users/login", 100, "{"))
            .await
            .unwrap();
        held.push(stream);
    }
    // The connections above may still be on their way to being admitted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        // A request at once: if admitted after all, it is answered at
        // once too, and the next try follows.
        let mut extra = connect_from(crowded, server).await;
        let _ = extra
            .write_all(b"GET /health HTTP/1.1\r\nHost: conduit.test\r\nConnection: close\r\n\r\n")
            .await;
        let (text, closed) = read_until_closed(&mut extra, ANSWER).await;
        if text.starts_with("HTTP/1.1 429") || Instant::now() > deadline {
            break (text, closed);
        }
    };
    assert!(refused.0.starts_with("HTTP/1.1 429"), "{refused:?}");
    assert!(refused.1, "a refused connection is closed");
    let body = refused.0.split_once("\r\n\r\n").unwrap().1;
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert!(body["errors"]["connection"][0].is_string(), "{body}");

    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2".parse().unwrap(), server).await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: conduit.test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut other, ANSWER).await.expect("served");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // A place given back is a place again.
    held.truncate(60);
    let deadline = Instant::now() + ANSWER;
    loop {
        let mut again = connect_from(crowded, server).await;
        again
            .write_all(&post_json("/api/users/login", "{}"))
            .await
            .unwrap();
        let (head, _) = read_response(&mut again, ANSWER).await.unwrap_or_default();
        if head.starts_with("HTTP/1.1 422") {
            break;
        }
        assert!(Instant::now() < deadline, "no place came back: {head}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `bytes` one at a time, a second apart, until the server closes.
fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, bytes: &'static [u8]) {
    tokio::spawn(async move {
        for byte in bytes.iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Reads until the server closes, for at most `limit`: whether it did.
async fn closed_within(reader: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_second_request_head_sent_slowly_is_cut_off_like_the_first() {
    // actix-http times only the first head of a connection.
    let app = spawn_app().await;
    let mut stream = send(
        socket_address(&app.address),
        b"GET /health HTTP/1.1\r\nHost: conduit\r\n\r\n",
    )
    .await;
    let (head, _) = read_response(&mut stream, ANSWER)
        .await
        .expect("the answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /api/tags HTTP/1.1\r\nHost: conduit\r\n")
        .await
        .expect("send");
    let started = Instant::now();
    trickle(writer, b"X-Slow: yes\r\n");

    assert!(
        closed_within(&mut reader, Duration::from_secs(30)).await,
        "a second head trickled for 30 s kept its connection"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_no_route_reads_does_not_keep_its_connection_open() {
    let app = spawn_app().await;
    let mut stream = send(
        socket_address(&app.address),
        b"POST /api/articles/some-slug/favorite HTTP/1.1\r\nHost: conduit\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
    )
    .await;
    let (head, _) = read_response(&mut stream, ANSWER)
        .await
        .expect("the answer");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let (mut reader, writer) = stream.into_split();
    trickle(writer, b"1\r\n \r\n");

    assert!(
        closed_within(&mut reader, Duration::from_secs(30)).await,
        "a body trickled to a route that answered without it kept its connection for 30 s"
    );
}

#[tokio::test]
async fn a_client_that_pipelines_requests_and_reads_no_answer_is_cut_off() {
    // Without a deadline on writes, the answers were buffered for as long
    // as the client kept the connection (megabytes each).
    let app = spawn_app().await;
    // A small receive buffer, so that the answers stop fitting soon: with
    // the kernel's default, which grows to megabytes, a busy machine takes
    // a minute to fill it before the server's write even starts to stall.
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let stream = socket
        .connect(socket_address(&app.address))
        .await
        .expect("connect");
    let (_reader, mut writer) = stream.into_split();
    let requests = b"GET /api/tags HTTP/1.1\r\nHost: conduit\r\n\r\n".repeat(2_000);
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        loop {
            if writer.write_all(&requests).await.is_err() {
                return;
            }
        }
    });

    // No speed is asserted: the bound only says "never", generously.
    let cut_off = tokio::time::timeout(Duration::from_secs(180), sending).await;

    assert!(
        cut_off.is_ok(),
        "the connection was still taking requests after 180 s"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = post_raw(&app, "/api/users/login", Some("application/json"), "{}").await;
    assert_eq!(status, 422, "others are still served");
}
