//! HTTP spoken by hand over a TCP socket: for what a client library would
//! not send (half a body, a malformed header) or would hide (a `100
//! Continue`, a body after `HEAD`, the moment a connection closes).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// `http://127.0.0.1:port` as a socket address.
pub fn socket_address(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a socket address")
}

/// A connection to `server` from the local address `from` (any of
/// 127.0.0.0/8 works on Linux): another client, as the server sees it.
pub async fn connect_from(from: IpAddr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind a loopback address");
    socket.connect(server).await.expect("connect")
}

/// Connects and sends `bytes`.
pub async fn send(server: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    stream
}

/// What the server sends until it closes the connection (true), or until
/// `limit` passes (false).
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// One response head and the `Content-Length` bytes of body after it,
/// leaving the connection open; None if it does not come within `limit`.
pub async fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<(String, String)> {
    tokio::time::timeout(limit, async {
        let mut received = Vec::new();
        let mut byte = [0u8; 1];
        while !received.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => received.push(byte[0]),
                _ => return None,
            }
        }
        let head = String::from_utf8_lossy(&received).into_owned();
        let length = header(&head, "content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.ok()?;
        Some((head, String::from_utf8_lossy(&body).into_owned()))
    })
    .await
    .ok()
    .flatten()
}

/// A header's value in a response head, by case-insensitive name.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// A request with a JSON body.
pub fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: conduit.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A request that declares `declared` bytes of body and sends only `sent`.
pub fn half_sent_body(path: &str, declared: usize, sent: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: conduit.test\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\n\r\n{sent}"
    )
    .into_bytes()
}
