//! A deadline on every request head of a connection, not only its first.
//! actix-http times the first head (`client_request_timeout`) and then
//! clears its keep-alive timer as soon as a byte of the next request
//! arrives: a client could trickle a second head, or the tail of a body
//! no route reads, for as long as it liked while holding a descriptor.
//!
//! The socket is wrapped: bytes read between two requests (after the app
//! answered one, before the next head is whole) start the clock, and a
//! read after the deadline fails, which closes the connection. The app
//! side tells the socket where it is through the connection's data.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Where a connection is between its requests; shared by the socket and
/// the app (one connection, one thread).
#[derive(Debug, Default)]
pub struct RequestPhase {
    in_request: Cell<bool>,
    /// Requests started so far: a clock armed before one is void after.
    started: Cell<u64>,
}

impl RequestPhase {
    /// A head has been read whole and the app is answering it.
    pub fn request_started(&self) {
        self.in_request.set(true);
        self.started.set(self.started.get() + 1);
    }

    /// The app has answered; what is read next belongs to the next head.
    pub fn request_answered(&self) {
        self.in_request.set(false);
    }
}

/// A socket whose heads must arrive within `timeout` of their first byte.
pub struct HeadDeadline {
    io: TcpStream,
    phase: Rc<RequestPhase>,
    timeout: Duration,
    /// The running clock, and the request count when it started.
    clock: Option<(Pin<Box<Sleep>>, u64)>,
}

impl HeadDeadline {
    pub fn new(io: TcpStream, timeout: Duration) -> Self {
        Self {
            io,
            phase: Rc::default(),
            timeout,
            clock: None,
        }
    }

    /// The handle the app keeps in the connection's data.
    pub fn phase(&self) -> Rc<RequestPhase> {
        Rc::clone(&self.phase)
    }

    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.io.peer_addr()
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let started = this.phase.started.get();
        if this.phase.in_request.get() || this.clock.as_ref().is_some_and(|(_, at)| *at != started)
        {
            this.clock = None;
        }
        if let Some((sleep, _)) = this.clock.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head not received in time",
                )));
            }
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        let got_bytes = matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        if got_bytes && this.clock.is_none() && !this.phase.in_request.get() {
            let mut sleep = Box::pin(tokio::time::sleep(this.timeout));
            // Registers the waker: the dispatcher reads again when it fires.
            let _ = sleep.as_mut().poll(cx);
            this.clock = Some((sleep, started));
        }
        read
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
