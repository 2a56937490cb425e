//! The access log (opt-in, `--access-log FILE` or `-` for stdout): one JSON object per request,
//! or the ConfigMap's `log-format-upstream` line ([`LineFormat`], nginx's variables compiled once
//! per table), written by a background task. The request path only formats the line and hands it over without
//! waiting; when the writer falls behind, lines are dropped and counted
//! (`remora_access_log_dropped_total`), never requests delayed.

use crate::stats::{Global, RouteStats, SessionOutcome};
use http::uri::Authority;
use http::{HeaderName, HeaderValue, Request, Response};
use model::{LogEscape, LogPart, LogVar};
use smallvec::SmallVec;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Lines waiting for the writer at most.
const QUEUE: usize = 8192;

/// What happened to a request, for its metrics and access log line: filled in by the phases as
/// they go.
pub struct Outcome<'t> {
    pub stats: Option<&'t RouteStats>,
    pub session: SessionOutcome,
    /// The endpoint that answered (or was tried last).
    pub upstream: Option<&'t Authority>,
    pub tries: u8,
    /// The `X-Request-ID` sent upstream (the client's, or the one made for it), when the access
    /// log is on.
    pub request_id: Option<HeaderValue>,
    /// The route keeps its requests out of the access log (`enable-access-log: "false"`).
    pub unlogged: bool,
    /// The response gets this `Strict-Transport-Security` (HTTPS, a host with a certificate).
    pub hsts: Option<&'t HeaderValue>,
    /// The route's `custom-headers`, set on the response whatever answers it.
    pub custom_headers: Option<&'t crate::filters::HeaderEditor>,
    /// The request counts under `limit-connections` while this lives.
    pub in_flight: Option<crate::limit::InFlightGuard>,
    /// The route's ingress-nginx series (`--metrics-compat ingress-nginx`).
    pub compat: Option<&'t crate::compat::CompatStats>,
    /// With those: how long after its try started the pod's response head came.
    pub upstream_header: Option<Duration>,
}

impl Default for Outcome<'_> {
    fn default() -> Self {
        Self {
            stats: None,
            session: SessionOutcome::None,
            upstream: None,
            tries: 0,
            request_id: None,
            unlogged: false,
            hsts: None,
            custom_headers: None,
            in_flight: None,
            compat: None,
            upstream_header: None,
        }
    }
}

pub struct AccessLog {
    tx: mpsc::Sender<Vec<u8>>,
}

/// What the log needs from the request, taken before the request is consumed.
pub struct RequestLine {
    time: SystemTime,
    client: HeaderValue,
    method: http::Method,
    host: Option<HeaderValue>,
    uri: http::Uri,
    request_id: Option<HeaderValue>,
    version: http::Version,
    tls: bool,
    /// With a [`LineFormat`]: the request headers it names, in its order.
    headers: SmallVec<[Option<HeaderValue>; 4]>,
    /// With a [`LineFormat`] naming `$request_length`.
    request_length: u64,
}

impl RequestLine {
    pub fn of<B>(
        req: &Request<B>,
        client: &HeaderValue,
        tls: bool,
        format: Option<&LineFormat>,
    ) -> Self {
        let (headers, request_length) = match format {
            Some(f) => (
                f.headers
                    .iter()
                    .map(|n| req.headers().get(n).cloned())
                    .collect(),
                if f.request_length {
                    crate::compat::request_size(req)
                } else {
                    0
                },
            ),
            None => (SmallVec::new(), 0),
        };
        Self {
            time: SystemTime::now(),
            client: client.clone(),
            method: req.method().clone(),
            host: req.headers().get(http::header::HOST).cloned(),
            uri: req.uri().clone(),
            request_id: req.headers().get("x-request-id").cloned(),
            version: req.version(),
            tls,
            headers,
            request_length,
        }
    }
}

/// A `log-format-upstream` ready for requests: its parts, the request headers they name (taken
/// with the [`RequestLine`]) and how values are escaped.
#[derive(Debug)]
pub struct LineFormat {
    parts: Vec<Part>,
    headers: Vec<HeaderName>,
    escape: LogEscape,
    request_length: bool,
}

#[derive(Debug)]
enum Part {
    Literal(Box<str>),
    Var(LogVar),
    /// `$http_NAME`: the index of its value in [`RequestLine::headers`].
    Header(usize),
    SentHeader(HeaderName),
    /// `$remote_user`: the user of the `Authorization` header at this index.
    RemoteUser(usize),
    Unset,
}

impl LineFormat {
    pub fn new(format: &model::LogFormat) -> Self {
        let mut headers: Vec<HeaderName> = Vec::new();
        let mut index = |name: HeaderName| match headers.iter().position(|h| *h == name) {
            Some(i) => i,
            None => {
                headers.push(name);
                headers.len() - 1
            }
        };
        let mut request_length = false;
        let parts = format
            .parts
            .iter()
            .map(|p| match p {
                LogPart::Literal(l) => Part::Literal(l.as_str().into()),
                LogPart::Var(LogVar::Header(h)) => match HeaderName::from_bytes(h.as_bytes()) {
                    Ok(name) => Part::Header(index(name)),
                    Err(_) => Part::Unset,
                },
                LogPart::Var(LogVar::SentHeader(h)) => match HeaderName::from_bytes(h.as_bytes()) {
                    Ok(name) => Part::SentHeader(name),
                    Err(_) => Part::Unset,
                },
                LogPart::Var(LogVar::RemoteUser) => {
                    Part::RemoteUser(index(http::header::AUTHORIZATION))
                }
                LogPart::Var(LogVar::Unknown(_)) => Part::Unset,
                LogPart::Var(v) => {
                    request_length |= *v == LogVar::RequestLength;
                    Part::Var(v.clone())
                }
            })
            .collect();
        LineFormat {
            parts,
            headers,
            escape: format.escape,
            request_length,
        }
    }
}

fn text(v: Option<&HeaderValue>) -> &str {
    v.and_then(|v| v.to_str().ok()).unwrap_or("")
}

impl AccessLog {
    /// Start the writer: `-` is stdout, anything else a file appended to.
    pub async fn open(path: PathBuf) -> std::io::Result<AccessLog> {
        let mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = if path.as_os_str() == "-" {
            Box::new(tokio::io::stdout())
        } else {
            Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await?,
            )
        };
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(line) = rx.recv().await {
                buf.extend_from_slice(&line);
                // Take what else is queued, then write it in one go.
                while buf.len() < 60 * 1024 {
                    match rx.try_recv() {
                        Ok(l) => buf.extend_from_slice(&l),
                        Err(_) => break,
                    }
                }
                if out.write_all(&buf).await.is_err() || out.flush().await.is_err() {
                    tracing::warn!("access log write failed; lines are lost until it recovers");
                }
                buf.clear();
            }
        });
        Ok(AccessLog { tx })
    }

    pub fn write<B: hyper::body::Body>(
        &self,
        line: RequestLine,
        out: &Outcome<'_>,
        response: &Response<B>,
        elapsed: Duration,
        global: &Global,
        format: Option<&LineFormat>,
    ) {
        let status = response.status().as_u16();
        let s = match format {
            Some(f) => render(f, &line, out, response, elapsed),
            None => json_line(&line, out, status, elapsed).into_bytes(),
        };
        if self.tx.try_send(s).is_err() {
            global.access_log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Remora's own line: one JSON object.
fn json_line(line: &RequestLine, out: &Outcome<'_>, status: u16, elapsed: Duration) -> String {
    let (ingress, service) = out
        .stats
        .map_or(("", ""), |s| (s.ingress.as_str(), s.service.as_str()));
    let host = text(line.host.as_ref());
    let host = if host.is_empty() {
        line.uri.authority().map_or("", |a| a.as_str())
    } else {
        host
    };
    let json = serde_json::json!({
        "time": model::time::rfc3339(line.time),
        "client": line.client.to_str().unwrap_or(""),
        "method": line.method.as_str(),
        "host": host,
        "path": line.uri.path_and_query().map_or("/", |p| p.as_str()),
        "status": status,
        "duration_ms": (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "ingress": ingress,
        "service": service,
        "upstream": out.upstream.map(|a| a.as_str()),
        "tries": out.tries,
        "session": out.session.as_str(),
        "request_id": text(line.request_id.as_ref().or(out.request_id.as_ref())),
    });
    let mut s = json.to_string();
    s.push('\n');
    s
}

/// A [`LineFormat`] line, as nginx writes it: variables escaped, unset ones `-` (default escape)
/// or empty.
fn render<B: hyper::body::Body>(
    f: &LineFormat,
    line: &RequestLine,
    out: &Outcome<'_>,
    response: &Response<B>,
    elapsed: Duration,
) -> Vec<u8> {
    let mut w = Line {
        buf: Vec::with_capacity(256),
        escape: f.escape,
    };
    let (ingress, service) = out.stats.map_or((None, None), |s| {
        (Some(s.ingress.as_str()), Some(s.service.as_str()))
    });
    // `namespace/service:port`, `-` when the backend does not resolve.
    let service = service.filter(|s| *s != "-");
    for part in &f.parts {
        match part {
            Part::Literal(l) => w.buf.extend_from_slice(l.as_bytes()),
            Part::Unset => w.unset(),
            Part::Header(i) => w.opt(
                line.headers
                    .get(*i)
                    .and_then(Option::as_ref)
                    .map(HeaderValue::as_bytes),
            ),
            Part::SentHeader(name) => {
                w.opt(response.headers().get(name).map(HeaderValue::as_bytes))
            }
            Part::RemoteUser(i) => {
                let mut decoded = [0u8; 512];
                let user = line
                    .headers
                    .get(*i)
                    .and_then(Option::as_ref)
                    .and_then(|v| basic_user(v.as_bytes(), &mut decoded));
                w.opt(user);
            }
            Part::Var(v) => var(&mut w, v, line, out, response, elapsed, ingress, service),
        }
    }
    w.buf.push(b'\n');
    w.buf
}

/// The length of a response's body, as far as it is known when the head is (nginx's
/// `$body_bytes_sent`): its exact size, else its `Content-Length`, else 0.
fn body_len<B: hyper::body::Body>(response: &Response<B>) -> u64 {
    response
        .body()
        .size_hint()
        .exact()
        .or_else(|| {
            response
                .headers()
                .get(http::header::CONTENT_LENGTH)?
                .to_str()
                .ok()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn var<B: hyper::body::Body>(
    w: &mut Line,
    v: &LogVar,
    line: &RequestLine,
    out: &Outcome<'_>,
    response: &Response<B>,
    elapsed: Duration,
    ingress: Option<&str>,
    service: Option<&str>,
) {
    use std::io::Write;
    let status = response.status().as_u16();
    let body_len = || body_len(response);
    let since_epoch = line
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let target = line.uri.path_and_query().map_or("/", |p| p.as_str());
    match v {
        LogVar::RemoteAddr => w.value(line.client.as_bytes()),
        LogVar::TimeLocal => time_local(&mut w.buf, since_epoch.as_secs()),
        LogVar::TimeIso8601 => time_iso8601(&mut w.buf, since_epoch.as_secs()),
        LogVar::Msec => {
            let _ = write!(
                w.buf,
                "{}.{:03}",
                since_epoch.as_secs(),
                since_epoch.subsec_millis()
            );
        }
        LogVar::Request => {
            w.value(line.method.as_str().as_bytes());
            w.buf.push(b' ');
            w.value(target.as_bytes());
            w.buf.push(b' ');
            w.value(protocol(line.version).as_bytes());
        }
        LogVar::RequestMethod => w.value(line.method.as_str().as_bytes()),
        LogVar::RequestUri => w.value(target.as_bytes()),
        LogVar::Uri => w.value(line.uri.path().as_bytes()),
        LogVar::Args => w.opt(line.uri.query().map(str::as_bytes)),
        LogVar::ServerProtocol => w.value(protocol(line.version).as_bytes()),
        LogVar::Scheme => w.value(if line.tls { b"https" } else { b"http" }),
        LogVar::Host => {
            let raw = line
                .host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .or_else(|| line.uri.authority().map(|a| a.as_str()))
                .unwrap_or("");
            w.value(model::host_name(raw).as_bytes());
        }
        LogVar::Status => {
            let _ = write!(w.buf, "{status}");
        }
        LogVar::BodyBytesSent => {
            let _ = write!(w.buf, "{}", body_len());
        }
        LogVar::BytesSent => {
            let _ = write!(w.buf, "{}", crate::compat::response_size(response));
        }
        LogVar::RequestLength => {
            let _ = write!(w.buf, "{}", line.request_length);
        }
        LogVar::RequestTime => seconds(&mut w.buf, elapsed),
        LogVar::ProxyUpstreamName => match service {
            // ingress-nginx's upstream name: `namespace-service-port`.
            Some(s) => {
                let (ns, rest) = s.split_once('/').unwrap_or(("", s));
                let (name, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
                for (i, piece) in [ns, name, port].into_iter().enumerate() {
                    if i > 0 {
                        w.buf.push(b'-');
                    }
                    w.value(piece.as_bytes());
                }
            }
            None => w.buf.push(b'-'),
        },
        LogVar::ProxyAlternativeUpstreamName => {
            if out.stats.is_none() {
                w.unset();
            }
        }
        LogVar::UpstreamAddr => w.opt(out.upstream.map(|a| a.as_str().as_bytes())),
        LogVar::UpstreamResponseLength => match out.upstream_header {
            Some(_) => {
                let _ = write!(w.buf, "{}", body_len());
            }
            None => w.unset(),
        },
        LogVar::UpstreamResponseTime => match out.upstream_header {
            Some(d) => seconds(&mut w.buf, d),
            None => w.unset(),
        },
        LogVar::UpstreamStatus => match out.upstream {
            Some(_) => {
                let _ = write!(w.buf, "{status}");
            }
            None => w.unset(),
        },
        LogVar::RequestId => w.opt(
            line.request_id
                .as_ref()
                .or(out.request_id.as_ref())
                .map(HeaderValue::as_bytes),
        ),
        LogVar::Namespace => w.opt(
            ingress
                .and_then(|i| i.split_once('/'))
                .map(|(ns, _)| ns.as_bytes()),
        ),
        LogVar::IngressName => {
            w.opt(ingress.map(|i| i.split_once('/').map_or(i, |(_, n)| n).as_bytes()))
        }
        LogVar::ServiceName => w.opt(service.map(|s| {
            let rest = s.split_once('/').map_or(s, |(_, r)| r);
            rest.rsplit_once(':').map_or(rest, |(n, _)| n).as_bytes()
        })),
        LogVar::ServicePort => w.opt(
            service
                .and_then(|s| s.rsplit_once(':'))
                .map(|(_, p)| p.as_bytes()),
        ),
        LogVar::RemoteUser | LogVar::Header(_) | LogVar::SentHeader(_) | LogVar::Unknown(_) => {
            w.unset()
        }
    }
}

/// The line being written, and how values are escaped.
struct Line {
    buf: Vec<u8>,
    escape: LogEscape,
}

impl Line {
    /// An unset variable: `-`, or nothing with `escape=json` and `escape=none` (nginx's).
    fn unset(&mut self) {
        if self.escape == LogEscape::Default {
            self.buf.push(b'-');
        }
    }

    fn opt(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.value(v),
            None => self.unset(),
        }
    }

    /// A variable's value, escaped as nginx's `log_format` does.
    fn value(&mut self, v: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        match self.escape {
            LogEscape::None => self.buf.extend_from_slice(v),
            LogEscape::Default => {
                for &b in v {
                    if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                        self.buf.extend_from_slice(&[
                            b'\\',
                            b'x',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 0xf)],
                        ]);
                    } else {
                        self.buf.push(b);
                    }
                }
            }
            LogEscape::Json => {
                for &b in v {
                    match b {
                        b'"' => self.buf.extend_from_slice(b"\\\""),
                        b'\\' => self.buf.extend_from_slice(b"\\\\"),
                        b'\n' => self.buf.extend_from_slice(b"\\n"),
                        b'\r' => self.buf.extend_from_slice(b"\\r"),
                        b'\t' => self.buf.extend_from_slice(b"\\t"),
                        0x08 => self.buf.extend_from_slice(b"\\b"),
                        0x0c => self.buf.extend_from_slice(b"\\f"),
                        b if b < 0x20 => self.buf.extend_from_slice(&[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 0xf)],
                        ]),
                        b => self.buf.push(b),
                    }
                }
            }
        }
    }
}

/// nginx's `$server_protocol`.
fn protocol(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Seconds with milliseconds, as nginx's `$request_time`: `0.004`.
fn seconds(buf: &mut Vec<u8>, d: Duration) {
    use std::io::Write;
    let _ = write!(buf, "{}.{:03}", d.as_secs(), d.subsec_millis());
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// nginx's `$time_local` in UTC: `01/Dec/2026:03:24:25 +0000`.
fn time_local(buf: &mut Vec<u8>, unix: u64) {
    use std::io::Write;
    let (y, m, d) = model::time::civil_from_days((unix / 86_400) as i64);
    let s = unix % 86_400;
    let month = MONTHS.get(m as usize - 1).copied().unwrap_or("Jan");
    let _ = write!(
        buf,
        "{d:02}/{month}/{y:04}:{:02}:{:02}:{:02} +0000",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// nginx's `$time_iso8601` in UTC: `2026-12-01T03:24:25+00:00`.
fn time_iso8601(buf: &mut Vec<u8>, unix: u64) {
    use std::io::Write;
    let (y, m, d) = model::time::civil_from_days((unix / 86_400) as i64);
    let s = unix % 86_400;
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// nginx's `$remote_user`: the user name of a `Basic` `Authorization` value, decoded into `buf`.
fn basic_user<'b>(value: &[u8], buf: &'b mut [u8; 512]) -> Option<&'b [u8]> {
    use base64::Engine;
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let encoded = rest.trim_ascii();
    if encoded.len() > 680 {
        return None;
    }
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(encoded, buf)
        .ok()?;
    let decoded = buf.get(..n)?;
    let end = decoded.iter().position(|b| *b == b':').unwrap_or(n);
    decoded.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(escape: LogEscape, v: &[u8]) -> String {
        let mut w = Line {
            buf: Vec::new(),
            escape,
        };
        w.value(v);
        String::from_utf8_lossy(&w.buf).into_owned()
    }

    #[test]
    fn values_are_escaped_as_nginx_does() {
        let v = b"a \"q\" \\ \n\x01";
        assert_eq!(
            escaped(LogEscape::Default, v),
            r#"a \x22q\x22 \x5C \x0A\x01"#
        );
        assert_eq!(escaped(LogEscape::Json, v), r#"a \"q\" \\ \n\u0001"#);
        assert_eq!(escaped(LogEscape::None, v), "a \"q\" \\ \n\u{1}");
    }

    #[test]
    fn times_and_users() {
        let mut buf = Vec::new();
        time_local(&mut buf, 1_795_663_465);
        buf.push(b' ');
        time_iso8601(&mut buf, 1_795_663_465);
        assert_eq!(
            String::from_utf8_lossy(&buf),
            "26/Nov/2026:03:24:25 +0000 2026-11-26T03:24:25+00:00"
        );
        let mut decoded = [0u8; 512];
        assert_eq!(
            basic_user(b"Basic YWxpY2U6c2VjcmV0", &mut decoded),
            Some(&b"alice"[..])
        );
        assert_eq!(basic_user(b"Bearer xyz", &mut decoded), None);
    }
}
