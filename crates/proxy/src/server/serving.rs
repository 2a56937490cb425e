//! What serves one connection: hyper's HTTP/1 or HTTP/2 connection, chosen by the first bytes
//! (the HTTP/2 preface, as hyper-util's auto builder tells them), and for HTTP/1 nothing at all
//! while the connection is idle.
//!
//! An idle HTTP/1 connection is [`Served::release`]d: hyper's connection is taken apart (its
//! read and write buffers, 16 KiB, and its state freed) and only the socket and the service are
//! kept, parked until the client sends again; its first bytes then start a new hyper connection
//! with the same service, as nginx frees a keep-alive connection's buffers
//! (`ngx_http_set_keepalive`). Nothing is lost: hyper gives back what it read and did not
//! parse, and a connection is released only once hyper has flushed everything it wrote.

use bytes::Bytes;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{HttpService, ResponseBody};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How much a parked connection reads at once when its client sends again (on the stack; the
/// rest is hyper's to read).
const WAKE_READ: usize = 1024;

/// hyper's connection builders, one per protocol.
pub(crate) struct Protocols {
    pub(crate) h1: http1::Builder,
    pub(crate) h2: http2::Builder<TokioExecutor>,
}

type Io<I> = TokioIo<Rewind<I>>;

enum State<I, S: hyper::service::HttpService<hyper::body::Incoming>> {
    /// Reading the first bytes: the HTTP/2 preface, or HTTP/1.
    Sniff {
        io: I,
        service: S,
        buf: [u8; H2_PREFACE.len()],
        filled: usize,
    },
    H1(Pin<Box<http1::UpgradeableConnection<Io<I>, S>>>),
    H2(Pin<Box<http2::Connection<Io<I>, S, TokioExecutor>>>),
    /// An idle HTTP/1 connection without hyper: waiting for its client's next bytes.
    Parked {
        io: I,
        service: S,
    },
    Done,
}

/// One connection's protocol, as a future that ends with the connection; `B`: its service's
/// response body.
pub(crate) struct Served<I, S: hyper::service::HttpService<hyper::body::Incoming>, B> {
    protocols: std::sync::Arc<Protocols>,
    state: State<I, S>,
    body: PhantomData<fn() -> B>,
}

// The service and the IO are moved between states, never pinned in place (hyper's connections
// are boxed).
impl<I, S: hyper::service::HttpService<hyper::body::Incoming>, B> Unpin for Served<I, S, B> {}

/// Errors of hyper, or of the socket while sniffing or parked.
pub(crate) type ServeError = Box<dyn std::error::Error + Send + Sync>;

impl<I, S, B> Served<I, S, B>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    pub(crate) fn new(protocols: std::sync::Arc<Protocols>, io: I, service: S) -> Self {
        Self {
            protocols,
            state: State::Sniff {
                io,
                service,
                buf: [0; H2_PREFACE.len()],
                filled: 0,
            },
            body: PhantomData,
        }
    }

    /// Close when idle, else after the requests in flight (HTTP/2: GOAWAY). Before a protocol
    /// is known, and while parked, at once.
    pub(crate) fn graceful_shutdown(&mut self) {
        match &mut self.state {
            State::H1(conn) => conn.as_mut().graceful_shutdown(),
            State::H2(conn) => conn.as_mut().graceful_shutdown(),
            State::Sniff { .. } | State::Parked { .. } => self.state = State::Done,
            State::Done => {}
        }
    }

    /// True while hyper serves HTTP/1 on the connection (it may be [`Served::release`]d).
    pub(crate) fn is_h1(&self) -> bool {
        matches!(self.state, State::H1(_))
    }

    /// Take an HTTP/1 connection's hyper state apart while it is idle. The caller knows it is:
    /// no request in flight, no head begun, and everything written flushed.
    pub(crate) fn release(&mut self) {
        let conn = match std::mem::replace(&mut self.state, State::Done) {
            State::H1(conn) => conn,
            other => {
                self.state = other;
                return;
            }
        };
        // `UpgradeableConnection` is `Unpin` (its connection is boxed by hyper's dispatcher
        // where it must be), so it can be moved out of its box.
        let Some(parts) = Pin::into_inner(conn).into_parts() else {
            return;
        };
        let rewind = parts.io.into_inner();
        let (io, unread) = rewind.into_parts();
        let read = parts.read_buf;
        if read.is_empty() && unread.is_empty() {
            self.state = State::Parked {
                io,
                service: parts.service,
            };
        } else {
            // Bytes of a next request were already read: serve on at once.
            let mut pending = Vec::with_capacity(read.len() + unread.len());
            pending.extend_from_slice(&read);
            pending.extend_from_slice(&unread);
            self.state = self.h1(io, parts.service, Bytes::from(pending));
        }
    }

    fn h1(&self, io: I, service: S, read: Bytes) -> State<I, S> {
        let io = TokioIo::new(Rewind::new(io, read));
        State::H1(Box::pin(
            self.protocols
                .h1
                .serve_connection(io, service)
                .with_upgrades(),
        ))
    }

    fn h2(&self, io: I, service: S, read: Bytes) -> State<I, S> {
        let io = TokioIo::new(Rewind::new(io, read));
        State::H2(Box::pin(self.protocols.h2.serve_connection(io, service)))
    }
}

impl<I, S, B> Future for Served<I, S, B>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    type Output = Result<(), ServeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::H1(conn) => return conn.as_mut().poll(cx).map_err(Into::into),
                State::H2(conn) => return conn.as_mut().poll(cx).map_err(Into::into),
                State::Done => return Poll::Ready(Ok(())),
                State::Sniff {
                    io, buf, filled, ..
                } => {
                    // As hyper-util's auto builder: HTTP/2 while the bytes are the preface's.
                    let mut h2 = true;
                    while *filled < H2_PREFACE.len() {
                        let mut read = ReadBuf::new(&mut buf[*filled..]);
                        ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
                        let n = read.filled().len();
                        if n == 0 {
                            h2 = false;
                            break;
                        }
                        let was = *filled;
                        *filled += n;
                        if buf[was..*filled] != H2_PREFACE[was..*filled] {
                            h2 = false;
                            break;
                        }
                    }
                    if let State::Sniff {
                        io,
                        service,
                        buf,
                        filled,
                    } = std::mem::replace(&mut this.state, State::Done)
                    {
                        let read = Bytes::copy_from_slice(&buf[..filled]);
                        this.state = if h2 {
                            this.h2(io, service, read)
                        } else if filled == 0 {
                            // Closed before a byte.
                            State::Done
                        } else {
                            this.h1(io, service, read)
                        };
                    }
                }
                State::Parked { io, .. } => {
                    let mut buf = [0u8; WAKE_READ];
                    let mut read = ReadBuf::new(&mut buf);
                    ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
                    let read = Bytes::copy_from_slice(read.filled());
                    if read.is_empty() {
                        // The client closed its idle connection.
                        this.state = State::Done;
                    } else if let State::Parked { io, service } =
                        std::mem::replace(&mut this.state, State::Done)
                    {
                        this.state = this.h1(io, service, read);
                    }
                }
            }
        }
    }
}

/// An IO whose first reads return bytes read before (while sniffing or parked).
pub(crate) struct Rewind<I> {
    pre: Bytes,
    io: I,
}

impl<I> Rewind<I> {
    fn new(io: I, pre: Bytes) -> Self {
        Self { pre, io }
    }

    /// The IO and what of the bytes read before was not read again.
    fn into_parts(self) -> (I, Bytes) {
        (self.io, self.pre)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            let pre = self.pre.split_to(n);
            buf.put_slice(&pre);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
