//! The PROXY protocol header (v1 text or v2 binary, HAProxy's specification) a load balancer puts
//! before a connection's own bytes (ingress-nginx's `use-proxy-protocol`). Read straight from the
//! socket before TLS and HTTP, and only the header's own bytes: the socket is peeked, and what is
//! taken from it is what the header is known to span, so the TLS or HTTP bytes that follow in the
//! same segment stay for them. The bytes are parsed by `ppp`.

use std::future::Future;
use std::net::SocketAddr;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest v1 header, `\r\n` included (the specification's 107 bytes).
const V1_MAX: usize = 107;
/// The longest v2 header taken (nginx's `NGX_PROXY_PROTOCOL_MAX_HEADER`): the fixed 16 bytes,
/// the addresses and the TLVs a load balancer adds.
const V2_MAX: usize = 4096;
/// The v2 header's first 12 bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// What a valid header says of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The load balancer's client (source) and the address it connected to (destination).
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// No addresses: a v2 `LOCAL` command (the load balancer's own health check), v1 `UNKNOWN`,
    /// or an address family other than TCP over IPv4 or IPv6 (UNIX sockets, unspecified). The
    /// socket's peer stays the client.
    Local,
}

/// Why a connection's header was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
    #[error("the connection ended before its PROXY protocol header")]
    Closed,
    #[error("no PROXY protocol header")]
    Missing,
    #[error("PROXY protocol v1 header longer than 107 bytes")]
    TooLong,
    #[error("PROXY protocol v2 header of {0} bytes, more than 4096")]
    TooLarge(usize),
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(String),
}

/// A connection the header is read from: a socket, or bytes in memory (tests, fuzzing).
pub trait Source {
    /// Copy what has come and not been taken, up to `buf`'s length, without taking it; 0: the
    /// connection ended. Waits for a byte when none has come.
    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<usize>>;
    /// Take exactly `buf`'s length of bytes.
    fn take(&mut self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<()>>;
}

impl Source for TcpStream {
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        TcpStream::peek(self, buf).await
    }

    async fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.read_exact(buf).await.map(|_| ())
    }
}

/// Bytes in memory, which come `segment` at a time (at least 1): a [`Source`] that never waits.
pub struct InMemory<'a> {
    pub bytes: &'a [u8],
    /// How many have been taken.
    pub taken: usize,
    pub segment: usize,
    /// How many have come so far (a peek that finds nothing new lets the next segment come).
    came: usize,
}

impl<'a> InMemory<'a> {
    pub fn new(bytes: &'a [u8], segment: usize) -> Self {
        let segment = segment.max(1);
        Self {
            bytes,
            taken: 0,
            segment,
            came: segment.min(bytes.len()),
        }
    }
}

impl Source for InMemory<'_> {
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.came == self.taken {
            self.came = (self.came + self.segment).min(self.bytes.len());
        }
        let n = buf.len().min(self.came - self.taken);
        buf[..n].copy_from_slice(&self.bytes[self.taken..self.taken + n]);
        Ok(n)
    }

    async fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let end = self.taken + buf.len();
        let Some(bytes) = self.bytes.get(self.taken..end) else {
            self.taken = self.bytes.len();
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        };
        buf.copy_from_slice(bytes);
        self.taken = end;
        self.came = self.came.max(end);
        Ok(())
    }
}

/// [`read`] over bytes in memory that come `segment` at a time: the header, and how many bytes it
/// took.
pub fn read_in_memory(bytes: &[u8], segment: usize) -> (Result<Header, Error>, usize) {
    let mut source = InMemory::new(bytes, segment);
    let result = {
        let future = std::pin::pin!(read(&mut source));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            // An in-memory source never waits.
            std::task::Poll::Pending => Err(Error::Closed),
        }
    };
    (result, source.taken)
}

/// Read the header `stream` begins with, and nothing after it.
pub async fn read(stream: &mut impl Source) -> Result<Header, Error> {
    let mut buf = [0u8; V1_MAX];
    let n = stream.peek(&mut buf[..1]).await?;
    match buf[..n].first() {
        None => Err(Error::Closed),
        Some(b'\r') => read_v2(stream).await,
        Some(b'P') => read_v1(stream, &mut buf).await,
        Some(_) => Err(Error::Missing),
    }
}

/// v2: the fixed part tells the length of the rest.
async fn read_v2(stream: &mut impl Source) -> Result<Header, Error> {
    let mut fixed = [0u8; 16];
    stream.take(&mut fixed).await.map_err(eof)?;
    if !fixed.starts_with(V2_SIGNATURE) {
        return Err(Error::Missing);
    }
    let total = 16 + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if total > V2_MAX {
        return Err(Error::TooLarge(total));
    }
    let mut header = vec![0u8; total];
    header[..16].copy_from_slice(&fixed);
    stream.take(&mut header[16..]).await.map_err(eof)?;
    parse(&header)
}

/// v1: peeked until its `\r\n`; bytes peeked before it are all the header's, so they are taken
/// as they come.
async fn read_v1(stream: &mut impl Source, buf: &mut [u8; V1_MAX]) -> Result<Header, Error> {
    let mut have = 0;
    loop {
        let n = stream.peek(&mut buf[have..]).await?;
        if n == 0 {
            return Err(Error::Closed);
        }
        let seen = have + n;
        let start = have.saturating_sub(1);
        let end = buf[start..seen]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|at| start + at + 2);
        let take = end.unwrap_or(seen);
        stream.take(&mut buf[have..take]).await.map_err(eof)?;
        have = take;
        let prefix = have.min(V1_PREFIX.len());
        if buf[..prefix] != V1_PREFIX[..prefix] {
            return Err(Error::Missing);
        }
        if end.is_some() {
            return parse(&buf[..have]);
        }
        if have == V1_MAX {
            return Err(Error::TooLong);
        }
    }
}

fn eof(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::Closed
    } else {
        Error::Io(e)
    }
}

/// A whole header (v1 with its `\r\n`, or v2 of the length it gives), nothing after it.
pub fn parse(header: &[u8]) -> Result<Header, Error> {
    use ppp::{v1, v2};
    if header.starts_with(V2_SIGNATURE) {
        let h = v2::Header::try_from(header).map_err(|e| Error::Invalid(e.to_string()))?;
        if h.len() != header.len() {
            return Err(Error::Invalid("length".to_owned()));
        }
        if h.command == v2::Command::Local {
            return Ok(Header::Local);
        }
        return Ok(match h.addresses {
            v2::Addresses::IPv4(a) => Header::Proxied {
                source: SocketAddr::new(a.source_address.into(), a.source_port),
                destination: SocketAddr::new(a.destination_address.into(), a.destination_port),
            },
            v2::Addresses::IPv6(a) => Header::Proxied {
                source: SocketAddr::new(a.source_address.into(), a.source_port),
                destination: SocketAddr::new(a.destination_address.into(), a.destination_port),
            },
            v2::Addresses::Unix(_) | v2::Addresses::Unspecified => Header::Local,
        });
    }
    let h = v1::Header::try_from(header).map_err(|e| Error::Invalid(e.to_string()))?;
    if h.header.len() != header.len() {
        return Err(Error::Invalid("bytes after the header".to_owned()));
    }
    Ok(match h.addresses {
        v1::Addresses::Tcp4(a) => Header::Proxied {
            source: SocketAddr::new(a.source_address.into(), a.source_port),
            destination: SocketAddr::new(a.destination_address.into(), a.destination_port),
        },
        v1::Addresses::Tcp6(a) => Header::Proxied {
            source: SocketAddr::new(a.source_address.into(), a.source_port),
            destination: SocketAddr::new(a.destination_address.into(), a.destination_port),
        },
        v1::Addresses::Unknown => Header::Local,
    })
}

#[cfg(test)]
mod tests;
