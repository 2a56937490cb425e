//! A lean HTTP/1.1 client for the common case: a request without a body (GET, HEAD, ...) to a
//! plain-HTTP pod.
//!
//! The exchange runs inside the request's own task: an idle connection is taken from the pool (or
//! one is opened), the request head goes out in one write, the response head is parsed with
//! `httparse`, and the response body is read by [`H1Body`] itself while the server writes it to the
//! client; when the body ends, the connection goes back to the pool. No connection task, channel or
//! pool future per request. Everything else (request bodies, upgrades, HTTPS, HTTP/2, gRPC) goes
//! through hyper's client.
//!
//! As nginx does with its keep-alive connections, a request that fails on a reused connection
//! before any byte of response came back is sent again once on a new connection to the same pod:
//! the pod may have closed the idle connection just as it was taken (only idempotent requests take
//! this path).

use crate::headers::{content_length, has_token};
use crate::timeout::BetweenReads;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use hyper::body::{Body, Frame, SizeHint};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response head (status line and headers) may not be larger (hyper's client allows about as
/// much); a chunk-size line or trailer block neither.
const MAX_HEAD: usize = 64 * 1024;
/// Response headers at most (hyper's default).
const MAX_HEADERS: usize = 100;
/// The read buffer grows by this much when it runs out of room...
const READ_CHUNK: usize = 8 * 1024;
/// ...and up to this much for a body whose reads keep filling it.
const MAX_READ_CHUNK: usize = 128 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("connect: timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed before the response")]
    Closed,
    #[error("invalid response: {0}")]
    Invalid(&'static str),
    #[error("no data from the pod for {0:?} within the body")]
    BodyTimeout(Duration),
}

impl Error {
    /// The connection never happened: the request did not reach the pod.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect(_) | Error::ConnectTimeout(_))
    }
}

/// Idle connections by pod address, kept across configurations, one set per worker thread: each
/// worker runs its own runtime, and a connection stays with the runtime that drives it (no lock,
/// no sharing between workers). The limits are the current table's (the ConfigMap's
/// `upstream-keepalive-*`): a connection is kept when its request ends if it has carried fewer
/// than `max_requests`, is younger than `max_lifetime` and the worker keeps fewer than `max_idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool {
    idle_timeout: Duration,
    max_idle: usize,
    max_requests: u32,
    max_lifetime: Duration,
}

impl Default for Pool {
    fn default() -> Self {
        Self::of(None)
    }
}

thread_local! {
    static IDLE: RefCell<Idle> = RefCell::default();
}

#[derive(Default)]
struct Idle {
    by_addr: HashMap<SocketAddr, Vec<Kept>>,
    /// Connections in `by_addr`.
    total: usize,
    /// When connections of pods no longer asked for are next looked for and closed.
    next_sweep: Option<Instant>,
}

/// An idle connection.
struct Kept {
    stream: TcpStream,
    since: Instant,
    age: Age,
}

/// When a connection was opened and how many requests it carried.
#[derive(Debug, Clone, Copy)]
struct Age {
    born: Instant,
    requests: u32,
}

impl Pool {
    /// ingress-nginx's limits with this idle timeout.
    pub fn new(idle_timeout: Duration) -> Self {
        let d = model::UpstreamKeepalive::default();
        Self {
            idle_timeout,
            ..Self::with(&d)
        }
    }

    /// The limits of the ConfigMap's `upstream-keepalive-*`, ingress-nginx's without.
    pub fn of(k: Option<&model::UpstreamKeepalive>) -> Self {
        Self::with(&k.copied().unwrap_or_default())
    }

    /// The limits of the ConfigMap's `upstream-keepalive-*`.
    pub fn with(k: &model::UpstreamKeepalive) -> Self {
        Self {
            idle_timeout: Duration::from_secs(k.timeout_secs),
            max_idle: usize::try_from(k.connections).unwrap_or(usize::MAX),
            max_requests: k.requests,
            max_lifetime: Duration::from_secs(k.time_secs),
        }
    }

    /// Idle connections kept per worker at most (hyper's pool: per pod).
    pub fn max_idle(&self) -> usize {
        self.max_idle
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The most recently used idle connection to `addr` that is still open (and within the
    /// current limits, which a reload may have lowered).
    fn take(&self, addr: SocketAddr) -> Option<(TcpStream, Age)> {
        if self.max_idle == 0 {
            return None;
        }
        let now = Instant::now();
        IDLE.with_borrow_mut(|idle| {
            let list = idle.by_addr.get_mut(&addr)?;
            let mut found = None;
            while let Some(kept) = list.pop() {
                idle.total = idle.total.saturating_sub(1);
                if now.saturating_duration_since(kept.since) > self.idle_timeout {
                    // The rest are older still.
                    idle.total = idle.total.saturating_sub(list.len());
                    list.clear();
                    break;
                }
                if kept.age.requests < self.max_requests
                    && now.saturating_duration_since(kept.age.born) < self.max_lifetime
                    && still_open(&kept.stream)
                {
                    found = Some((kept.stream, kept.age));
                    break;
                }
            }
            found
        })
    }

    fn put(&self, addr: SocketAddr, stream: TcpStream, age: Age) {
        let now = Instant::now();
        if age.requests >= self.max_requests
            || now.saturating_duration_since(age.born) >= self.max_lifetime
        {
            return;
        }
        IDLE.with_borrow_mut(|idle| {
            if idle.total < self.max_idle {
                idle.by_addr.entry(addr).or_default().push(Kept {
                    stream,
                    since: now,
                    age,
                });
                idle.total += 1;
            }
            match idle.next_sweep {
                Some(at) if at > now => {}
                _ => {
                    let timeout = self.idle_timeout;
                    let mut total = 0;
                    idle.by_addr.retain(|_, list| {
                        list.retain(|k| now.saturating_duration_since(k.since) <= timeout);
                        total += list.len();
                        !list.is_empty()
                    });
                    idle.total = total;
                    idle.next_sweep = Some(now + timeout);
                }
            }
        })
    }

    /// Idle connections kept (for tests).
    #[cfg(test)]
    fn idle(&self, addr: SocketAddr) -> usize {
        IDLE.with_borrow(|idle| idle.by_addr.get(&addr).map_or(0, Vec::len))
    }
}

/// An idle connection is usable when nothing is waiting to be read on it: neither the pod's close
/// nor stray bytes. No system call unless the socket became readable.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// How long connecting may take, and how long the pod may stay silent within the response body
/// (nginx's `proxy_read_timeout` between two reads; the caller bounds the wait for the head).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

/// Send a request without a body (its encoded `head`) to `addr` and read the response head.
pub async fn send(
    pool: Pool,
    addr: SocketAddr,
    method: &Method,
    head: &[u8],
    timeouts: Timeouts,
) -> Result<Response<H1Body>, Error> {
    if let Some((stream, age)) = pool.take(addr) {
        let age = Age {
            requests: age.requests.saturating_add(1),
            ..age
        };
        match exchange(pool, addr, stream, age, method, head, timeouts.read).await {
            Err(Failed {
                error,
                before_response: true,
            }) => {
                tracing::debug!(upstream = %addr, %error, "reused connection failed, sending again on a new one");
            }
            other => return other.map_err(|f| f.error),
        }
    }
    let stream = match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Error::Connect(e)),
        Err(_) => return Err(Error::ConnectTimeout(timeouts.connect)),
    };
    let _ = stream.set_nodelay(true);
    let age = Age {
        born: Instant::now(),
        requests: 1,
    };
    exchange(pool, addr, stream, age, method, head, timeouts.read)
        .await
        .map_err(|f| f.error)
}

struct Failed {
    error: Error,
    /// Nothing of a response came back (the request may not have reached the pod).
    before_response: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self {
            error,
            before_response: false,
        }
    }
}

async fn exchange(
    pool: Pool,
    addr: SocketAddr,
    mut stream: TcpStream,
    age: Age,
    method: &Method,
    head: &[u8],
    read_timeout: Duration,
) -> Result<Response<H1Body>, Failed> {
    let early = |e: io::Error| Failed {
        error: Error::Io(e),
        before_response: true,
    };
    stream.write_all(head).await.map_err(early)?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let n = stream.read_buf(&mut buf).await.map_err(|e| Failed {
            before_response: buf.is_empty(),
            ..Failed::from(Error::Io(e))
        })?;
        if n == 0 {
            return Err(if buf.is_empty() {
                Failed {
                    error: Error::Closed,
                    before_response: true,
                }
            } else {
                Error::Invalid("connection closed within the response head").into()
            });
        }
        if let Some(parsed) = final_head(&mut buf)? {
            let conn = Conn {
                stream,
                pool,
                addr,
                age,
                silence: BetweenReads::new(read_timeout),
            };
            return Ok(respond(Some(conn), method, parsed, buf)?);
        }
    }
}

/// The final response head at the start of `buf`, removed from there with the informational
/// responses (100 Continue, 103 Early Hints) read past before it; `None`: not complete yet.
fn final_head(buf: &mut BytesMut) -> Result<Option<Head>, Error> {
    while let Some(parsed) = parse_head(buf)? {
        if parsed.status.is_informational() {
            if parsed.status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(Error::Invalid("101 to a request without Upgrade"));
            }
            continue;
        }
        return Ok(Some(parsed));
    }
    if buf.len() > MAX_HEAD {
        return Err(Error::Invalid("response head over 64 KiB"));
    }
    Ok(None)
}

struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
}

/// Parse a complete response head at the start of `buf` and remove it from there; `None`: not
/// complete yet.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Error> {
    // Header positions in `buf`, to slice them out of the frozen head without copying.
    let mut spans = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
    let (len, code, minor, count) = {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::Invalid("more than 100 headers"))
            }
            Err(_) => return Err(Error::Invalid("malformed head")),
        };
        // Where a slice of `buf` starts in it (an empty slice may point anywhere: then 0).
        let base = buf.as_ptr() as usize;
        let at = |s: &[u8]| {
            (s.as_ptr() as usize)
                .checked_sub(base)
                .filter(|start| start + s.len() <= len)
                .unwrap_or(0)
        };
        let count = response.headers.len();
        for (span, h) in spans.iter_mut().zip(response.headers.iter()) {
            let (name, value) = (at(h.name.as_bytes()), at(h.value));
            *span = (name, name + h.name.len(), value, value + h.value.len());
        }
        (
            len,
            response.code.unwrap_or(0),
            response.version.unwrap_or(1),
            count,
        )
    };
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| Error::Invalid("status code"))?;
    let mut headers = HeaderMap::with_capacity(count);
    for &(ns, ne, vs, ve) in &spans[..count] {
        if ne > head.len() || ve > head.len() {
            return Err(Error::Invalid("header outside the head"));
        }
        let name =
            HeaderName::from_bytes(&head[ns..ne]).map_err(|_| Error::Invalid("header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs..ve))
            .map_err(|_| Error::Invalid("header value"))?;
        headers.append(name, value);
    }
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    Ok(Some(Head {
        status,
        version,
        headers,
    }))
}

/// The response for a parsed head: its body framing (RFC 9112 section 6.3) and whether the
/// connection can be used again after it. `conn`: `None` only for bytes in memory
/// ([`read_in_memory`]).
fn respond(
    conn: Option<Conn>,
    method: &Method,
    mut head: Head,
    buf: BytesMut,
) -> Result<Response<H1Body>, Error> {
    let mut keep_alive = match head.version {
        Version::HTTP_11 => !has_token(&head.headers, &header::CONNECTION, "close"),
        _ => has_token(&head.headers, &header::CONNECTION, "keep-alive"),
    };
    let framing = if *method == Method::HEAD
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED
    {
        Framing::Length(0)
    } else if head.headers.contains_key(header::TRANSFER_ENCODING) {
        // A length next to a transfer coding is dropped, and such a connection not trusted again.
        if head.headers.remove(header::CONTENT_LENGTH).is_some() {
            keep_alive = false;
        }
        if last_coding_is_chunked(&head.headers) {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::UntilClose
        }
    } else if head.headers.contains_key(header::CONTENT_LENGTH) {
        Framing::Length(content_length(&head.headers).ok_or(Error::Invalid("content-length"))?)
    } else {
        Framing::UntilClose
    };
    if matches!(framing, Framing::UntilClose) {
        keep_alive = false;
    }
    let mut body = H1Body {
        conn,
        buf,
        framing,
        keep_alive,
        chunk: READ_CHUNK,
    };
    if let Framing::Length(0) = body.framing {
        body.finish();
    }
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    Ok(response)
}

fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

struct Conn {
    stream: TcpStream,
    pool: Pool,
    addr: SocketAddr,
    age: Age,
    /// The pod's silence within the body (no timer on the fast path, where the body comes with
    /// the head).
    silence: BetweenReads,
}

enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// The body ends when the pod closes the connection.
    UntilClose,
    Done,
}

#[derive(Clone, Copy)]
enum Chunk {
    /// Next: a chunk-size line.
    Size,
    /// This many bytes of the current chunk are left.
    Data(u64),
    /// Next: the CRLF closing a chunk.
    DataEnd,
    /// Next: the trailer section after the last chunk.
    Trailers,
}

/// A response body read from the pod's connection as it is polled; the connection returns to the
/// pool when the body has been read to its end.
pub struct H1Body {
    conn: Option<Conn>,
    buf: BytesMut,
    framing: Framing,
    keep_alive: bool,
    /// Room made for the next read: doubles while reads fill it (large bodies), so they take
    /// fewer system calls.
    chunk: usize,
}

impl H1Body {
    /// The body is complete: the connection goes back to the pool if it can carry another request.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && self.buf.is_empty() {
                conn.pool.put(conn.addr, conn.stream, conn.age);
            }
        }
    }

    /// Read more of the body into the buffer; `Ok(0)`: the pod closed the connection.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(Ok(0));
        };
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(self.chunk);
        }
        let room = self.buf.capacity() - self.buf.len();
        loop {
            match conn.stream.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if conn.stream.poll_read_ready(cx)?.is_pending() {
                        ready!(conn.silence.poll_expired(cx));
                        return Poll::Ready(Err(Error::BodyTimeout(conn.silence.limit())));
                    }
                }
                other => {
                    conn.silence.reset();
                    if matches!(other, Ok(n) if n == room) {
                        self.chunk = (self.chunk * 2).min(MAX_READ_CHUNK);
                    }
                    return Poll::Ready(other.map_err(Error::Io));
                }
            }
        }
    }

    fn take_data(&mut self, max: u64) -> Bytes {
        let n = usize::try_from(max).map_or(self.buf.len(), |m| m.min(self.buf.len()));
        self.buf.split_to(n).freeze()
    }

    fn fail(&mut self, error: Error) -> Next {
        self.framing = Framing::Done;
        self.conn = None;
        Some(Err(error))
    }

    /// The next frame from what is buffered, or the body's end or error; `None`: more bytes are
    /// needed first.
    fn decode(&mut self) -> Option<Next> {
        loop {
            match self.framing {
                Framing::Done => return Some(None),
                Framing::Length(0) => {
                    self.finish();
                    return Some(None);
                }
                Framing::Length(left) if !self.buf.is_empty() => {
                    let data = self.take_data(left);
                    let left = left - data.len() as u64;
                    self.framing = Framing::Length(left);
                    if left == 0 {
                        self.finish();
                    }
                    return Some(Some(Ok(Frame::data(data))));
                }
                Framing::UntilClose if !self.buf.is_empty() => {
                    let data = self.take_data(u64::MAX);
                    return Some(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(Chunk::Size) if !self.buf.is_empty() => {
                    match httparse::parse_chunk_size(&self.buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            self.buf.advance(used);
                            self.framing = Framing::Chunked(if size == 0 {
                                Chunk::Trailers
                            } else {
                                Chunk::Data(size)
                            });
                            continue;
                        }
                        Ok(httparse::Status::Partial) if self.buf.len() <= MAX_HEAD => {}
                        _ => return Some(self.fail(Error::Invalid("chunk size"))),
                    }
                }
                Framing::Chunked(Chunk::Data(left)) if !self.buf.is_empty() => {
                    let data = self.take_data(left);
                    let left = left - data.len() as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Some(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(Chunk::DataEnd) if self.buf.len() >= 2 => {
                    if &self.buf[..2] != b"\r\n" {
                        return Some(self.fail(Error::Invalid("chunk not followed by CRLF")));
                    }
                    self.buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                    continue;
                }
                Framing::Chunked(Chunk::Trailers) if self.buf.starts_with(b"\r\n") => {
                    self.buf.advance(2);
                    self.finish();
                    return Some(None);
                }
                Framing::Chunked(Chunk::Trailers) if self.buf.len() >= 2 => {
                    match parse_trailers(&mut self.buf) {
                        Ok(Some(trailers)) => {
                            self.finish();
                            return Some(Some(Ok(Frame::trailers(trailers))));
                        }
                        Ok(None) if self.buf.len() <= MAX_HEAD => {}
                        Ok(None) => return Some(self.fail(Error::Invalid("trailers over 64 KiB"))),
                        Err(e) => return Some(self.fail(e)),
                    }
                }
                // Nothing (or not enough) buffered for the current state.
                _ => {}
            }
            return None;
        }
    }

    /// The pod closed the connection while [`H1Body::decode`] needed more bytes: the end of a
    /// body read until close, else an error.
    fn closed(&mut self) -> Next {
        if matches!(self.framing, Framing::UntilClose) {
            self.finish();
            return None;
        }
        self.fail(Error::Invalid("connection closed within the body"))
    }
}

/// What a body's poll gives.
type Next = Option<Result<Frame<Bytes>, Error>>;

impl Body for H1Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next> {
        let this = &mut *self;
        loop {
            if let Some(next) = this.decode() {
                return Poll::Ready(next);
            }
            // Nothing (or not enough) buffered for the current state: read more.
            match ready!(this.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(this.closed()),
                Ok(_) => {}
                Err(e) => return Poll::Ready(this.fail(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// A complete trailer section at the start of `buf`, removed from there; `None`: not complete.
fn parse_trailers(buf: &mut BytesMut) -> Result<Option<HeaderMap>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (used, parsed) = match httparse::parse_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(c)) => c,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Error::Invalid("trailers")),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Error::Invalid("trailer name"))?;
        let value =
            HeaderValue::from_bytes(h.value).map_err(|_| Error::Invalid("trailer value"))?;
        trailers.append(name, value);
    }
    buf.advance(used);
    Ok(Some(trailers))
}

/// A response as [`read_in_memory`] read it.
#[derive(Debug)]
pub struct InMemory {
    /// Status, version and headers.
    pub head: Response<()>,
    /// The body's bytes, as the data frames carried them.
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

/// The lean client's reading of a response from bytes in memory instead of a connection, for the
/// fuzz targets (`proxy::fuzzing`): each of `reads` is what one read from the pod gave (an empty
/// one is skipped), and the end of them is the pod closing the connection. The head and the body
/// go through the same functions as in [`send`] and [`H1Body`]'s `poll_frame`; only the socket,
/// the pool and the timers are left out.
pub fn read_in_memory<'a>(
    method: &Method,
    reads: impl IntoIterator<Item = &'a [u8]>,
) -> Result<InMemory, Error> {
    let mut reads = reads.into_iter().filter(|r| !r.is_empty());
    let mut buf = BytesMut::new();
    let head = loop {
        let Some(read) = reads.next() else {
            return Err(if buf.is_empty() {
                Error::Closed
            } else {
                Error::Invalid("connection closed within the response head")
            });
        };
        buf.extend_from_slice(read);
        if let Some(head) = final_head(&mut buf)? {
            break head;
        }
    };
    let (head, mut body) = respond(None, method, head, buf)?.into_parts();
    let (mut data, mut trailers) = (Vec::new(), None);
    loop {
        let next = match body.decode() {
            Some(next) => next,
            None => match reads.next() {
                Some(read) => {
                    body.buf.extend_from_slice(read);
                    continue;
                }
                None => body.closed(),
            },
        };
        match next.transpose()?.map(Frame::into_data) {
            None => break,
            Some(Ok(bytes)) => data.extend_from_slice(&bytes),
            Some(Err(frame)) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok(InMemory {
        head: Response::from_parts(head, ()),
        body: data,
        trailers,
    })
}

#[cfg(test)]
mod tests;
