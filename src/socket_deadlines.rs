//! Deadlines actix-http does not keep, on the socket itself.
//!
//! - **Every request head**, not only the first: actix-http times the
//!   first head (`client_request_timeout`) and clears its keep-alive timer
//!   as soon as a byte of the next request arrives, so a client could
//!   trickle a second head, or the tail of a body no route reads, for as
//!   long as it liked. Bytes read between two requests (after the app
//!   answered one, before the next head is whole) start a clock; a read
//!   after it fails, which closes the connection. The app tells the socket
//!   where it is through the connection's data.
//! - **Answers nobody reads**: a client that pipelines requests and reads
//!   none of the answers would have them buffered without end. While a
//!   write waits for the client, nothing more is read (so no further
//!   answer is made); a write that makes no progress for
//!   [`WRITE_STALL_TIMEOUT`] fails.

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

/// How long a write may wait for a client that reads nothing.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A socket whose heads must arrive within `head_timeout` of their first
/// byte, and whose writes must progress.
pub struct DeadlineSocket {
    io: TcpStream,
    phase: Rc<RequestPhase>,
    head_timeout: Duration,
    /// The running head clock, and the request count when it started.
    clock: Option<(Pin<Box<Sleep>>, u64)>,
    /// Since when a write has been waiting for the client.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl DeadlineSocket {
    pub fn new(io: TcpStream, head_timeout: Duration) -> Self {
        Self {
            io,
            phase: Rc::default(),
            head_timeout,
            clock: None,
            stalled: None,
        }
    }

    /// The handle the app keeps in the connection's data.
    pub fn phase(&self) -> Rc<RequestPhase> {
        Rc::clone(&self.phase)
    }
}

impl AsyncRead for DeadlineSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stalled) = this.stalled.as_mut() {
            // Woken again by the socket once it takes the write, or by
            // this clock.
            return if stalled.as_mut().poll(cx).is_ready() {
                Poll::Ready(Err(stall_error()))
            } else {
                Poll::Pending
            };
        }
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
            let mut sleep = Box::pin(tokio::time::sleep(this.head_timeout));
            // Registers the waker: the dispatcher reads again when it fires.
            let _ = sleep.as_mut().poll(cx);
            this.clock = Some((sleep, started));
        }
        read
    }
}

impl AsyncWrite for DeadlineSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch_progress(cx, written)
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
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch_progress(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl DeadlineSocket {
    /// Starts the stall clock when a write waits, stops it when one
    /// progresses, and fails the write once the clock has run out.
    fn watch_progress(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => {
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)));
                if stalled.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(stall_error()))
                } else {
                    Poll::Pending
                }
            }
            Poll::Ready(Ok(n)) if n > 0 => {
                self.stalled = None;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

fn stall_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the client reads no answer")
}
