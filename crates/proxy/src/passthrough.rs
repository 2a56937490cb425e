//! `ssl-passthrough` (ingress-nginx's, with `--enable-ssl-passthrough`): a TLS connection whose
//! ClientHello names (SNI) a passthrough host is not terminated. The ClientHello bytes, as they
//! came, then the rest of the connection are relayed to a pod of the host's backend, which
//! completes the handshake with its own certificate.
//!
//! The ClientHello is read by rustls, as for every handshake of the HTTPS listener
//! ([`crate::tls::SniAcceptor`]), through [`Recorded`], which keeps a copy of the bytes it reads
//! (at most [`MAX_HELLO`]); the header timeout bounds that read like the rest of a handshake.
//! Another name, no SNI, or a ClientHello larger than that (as ingress-nginx, which reads 16 KiB
//! once) goes on with the handshake, terminated as any other.

use crate::table::PassthroughTarget;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The most of a connection's first bytes kept for relaying: one TLS record of the largest size
/// (16 KiB) and its 5-byte header, which holds any ClientHello clients send.
pub(crate) const MAX_HELLO: usize = 16 * 1024 + 5;

/// How long a connect to a pod may take, and how many pods are tried: ingress-nginx's defaults of
/// `proxy-connect-timeout` and `proxy-next-upstream-tries` (the annotations are a location's, and
/// a passthrough connection has none).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TRIES: usize = 3;

/// A stream that keeps a copy of the first bytes read from it, up to [`MAX_HELLO`]; past that,
/// none (the copy is dropped).
pub(crate) struct Recorded<S> {
    inner: S,
    bytes: Vec<u8>,
    overflow: bool,
}

impl<S> Recorded<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            bytes: Vec::new(),
            overflow: false,
        }
    }

    /// The stream, and the bytes read from it unless there were more than [`MAX_HELLO`].
    pub(crate) fn into_parts(self) -> (S, Option<Vec<u8>>) {
        (self.inner, (!self.overflow).then_some(self.bytes))
    }

    fn record(&mut self, read: &[u8]) {
        if self.overflow {
            return;
        }
        if self.bytes.len() + read.len() > MAX_HELLO {
            self.overflow = true;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(read);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if let Some(read) = buf.filled().get(before..) {
                this.record(read);
            }
        }
        polled
    }
}

/// Writes go to the stream (the alert of a ClientHello rustls refuses).
impl<S: AsyncWrite + Unpin> AsyncWrite for Recorded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection to relay: the client, the bytes it sent so far (its ClientHello), and where to.
pub(crate) struct Relay {
    pub(crate) client: TcpStream,
    pub(crate) hello: Vec<u8>,
    pub(crate) target: PassthroughTarget,
}

impl Relay {
    /// Connect to a pod (the next one when a connect fails, as a request's failover does), send
    /// it the ClientHello, then relay both ways until both sides have closed, with no idle limit
    /// (ingress-nginx's relay has none; the pod's TLS server keeps its own). No pod reached:
    /// the client's connection is closed.
    pub(crate) async fn run(self, remote: SocketAddr) {
        let Relay {
            client,
            hello,
            target,
        } = self;
        let Some((mut upstream, pod)) = connect(&target).await else {
            tracing::debug!(%remote, "TLS passthrough: no pod could be reached, connection closed");
            return;
        };
        target.stats.passthrough();
        if let Err(e) = upstream.write_all(&hello).await {
            tracing::debug!(%remote, %pod, error = %e, "TLS passthrough: the pod closed");
            return;
        }
        drop(hello);
        tracing::debug!(%remote, %pod, "TLS passthrough");
        crate::tunnel::relay(client, upstream, None).await;
    }
}

/// A connection to one of the backend's pods that take new requests, round robin, trying up to
/// [`TRIES`] of them.
async fn connect(target: &PassthroughTarget) -> Option<(TcpStream, SocketAddr)> {
    let backend = &target.backend;
    let mut tried = [0usize; TRIES];
    for n in 0..TRIES {
        let endpoint = backend.balancer.pick_excluding(tried.get(..n)?)?;
        tried[n] = endpoint;
        let addr = *backend.addrs.get(endpoint)?;
        if n > 0 {
            target.stats.retry();
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, addr));
            }
            Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS passthrough: connect failed"),
            Err(_) => tracing::debug!(%addr, "TLS passthrough: connect timed out"),
        }
        target.stats.connect_error();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn records_what_is_read_up_to_the_limit() {
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        let mut rec = Recorded::new(rx);
        tx.write_all(b"hello").await.ok();
        let mut buf = [0u8; 5];
        rec.read_exact(&mut buf).await.ok();
        let (rx, bytes) = rec.into_parts();
        assert_eq!(bytes.as_deref(), Some(&b"hello"[..]));

        let mut rec = Recorded::new(rx);
        let big = vec![7u8; MAX_HELLO];
        tx.write_all(&big).await.ok();
        let mut buf = vec![0u8; MAX_HELLO];
        rec.read_exact(&mut buf).await.ok();
        let (rx, bytes) = rec.into_parts();
        assert_eq!(
            bytes.map(|b| b.len()),
            Some(MAX_HELLO),
            "exactly the limit is kept"
        );

        let mut rec = Recorded::new(rx);
        tx.write_all(&big).await.ok();
        tx.write_all(b"!").await.ok();
        let mut buf = vec![0u8; MAX_HELLO + 1];
        rec.read_exact(&mut buf).await.ok();
        assert_eq!(rec.into_parts().1, None, "past the limit nothing is kept");
    }
}
