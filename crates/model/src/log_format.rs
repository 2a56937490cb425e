//! ingress-nginx's `log-format-upstream` (nginx's `log_format upstreaminfo`): the access log line
//! as literal text and nginx variables, parsed once when the ConfigMap is read.

use serde::Serialize;

/// ingress-nginx's default `log-format-upstream`.
pub const DEFAULT_LOG_FORMAT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id";

/// An access log line format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogFormat {
    /// The format as written.
    pub source: String,
    pub escape: LogEscape,
    /// The format read: what [`LogFormat::source`] says, in order.
    #[serde(skip)]
    pub parts: Vec<LogPart>,
}

/// How variable values are written (nginx's `log_format ... escape=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEscape {
    /// `"`, `\`, control and non-ASCII bytes as `\xHH`; an unset variable is `-`.
    Default,
    /// JSON string escapes (`log-format-escape-json`); an unset variable is empty.
    Json,
    /// Written as they are (`log-format-escape-none`); an unset variable is empty.
    None,
}

/// Literal text, or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPart {
    Literal(String),
    Var(LogVar),
}

/// The variables a line may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogVar {
    RemoteAddr,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    Msec,
    /// `$request`: `METHOD URI PROTOCOL`.
    Request,
    RequestMethod,
    /// `$request_uri`: path and query as the client sent them.
    RequestUri,
    /// `$uri`: the path.
    Uri,
    /// `$args`, `$query_string`.
    Args,
    ServerProtocol,
    Scheme,
    /// `$host`: the request's host name, lower case, without port.
    Host,
    Status,
    BodyBytesSent,
    BytesSent,
    RequestLength,
    RequestTime,
    /// `$proxy_upstream_name`: `namespace-service-port`.
    ProxyUpstreamName,
    ProxyAlternativeUpstreamName,
    UpstreamAddr,
    UpstreamResponseLength,
    UpstreamResponseTime,
    UpstreamStatus,
    /// `$req_id`, `$request_id`: the `X-Request-ID` the pod got.
    RequestId,
    Namespace,
    IngressName,
    ServiceName,
    ServicePort,
    /// `$http_NAME`: a request header (lower case, `_` read as `-`).
    Header(String),
    /// `$sent_http_NAME`: a response header.
    SentHeader(String),
    /// A variable Remora does not know: written as an unset one.
    Unknown(String),
}

impl LogVar {
    fn of(name: &str) -> LogVar {
        let header = |n: &str| n.replace('_', "-").to_ascii_lowercase();
        match name {
            "remote_addr" => LogVar::RemoteAddr,
            "remote_user" => LogVar::RemoteUser,
            "time_local" => LogVar::TimeLocal,
            "time_iso8601" => LogVar::TimeIso8601,
            "msec" => LogVar::Msec,
            "request" => LogVar::Request,
            "request_method" => LogVar::RequestMethod,
            "request_uri" => LogVar::RequestUri,
            "uri" | "document_uri" => LogVar::Uri,
            "args" | "query_string" => LogVar::Args,
            "server_protocol" => LogVar::ServerProtocol,
            "scheme" => LogVar::Scheme,
            "host" => LogVar::Host,
            "status" => LogVar::Status,
            "body_bytes_sent" => LogVar::BodyBytesSent,
            "bytes_sent" => LogVar::BytesSent,
            "request_length" => LogVar::RequestLength,
            "request_time" => LogVar::RequestTime,
            "proxy_upstream_name" => LogVar::ProxyUpstreamName,
            "proxy_alternative_upstream_name" => LogVar::ProxyAlternativeUpstreamName,
            "upstream_addr" => LogVar::UpstreamAddr,
            "upstream_response_length" => LogVar::UpstreamResponseLength,
            "upstream_response_time" => LogVar::UpstreamResponseTime,
            "upstream_status" => LogVar::UpstreamStatus,
            "req_id" | "request_id" => LogVar::RequestId,
            "namespace" => LogVar::Namespace,
            "ingress_name" => LogVar::IngressName,
            "service_name" => LogVar::ServiceName,
            "service_port" => LogVar::ServicePort,
            _ => match (name.strip_prefix("http_"), name.strip_prefix("sent_http_")) {
                (Some(h), _) if !h.is_empty() => LogVar::Header(header(h)),
                (_, Some(h)) if !h.is_empty() => LogVar::SentHeader(header(h)),
                _ => LogVar::Unknown(name.to_owned()),
            },
        }
    }
}

impl LogFormat {
    /// Parse a format as nginx reads `log_format`: `$name` or `${name}` (letters, digits, `_`) is a
    /// variable, the rest literal text. Returns the format and the names of the variables Remora
    /// does not know.
    pub fn parse(format: &str, escape: LogEscape) -> (LogFormat, Vec<String>) {
        let mut parts = Vec::new();
        let mut unknown = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, next) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], &braced[end + 1..]),
                    None => ("", after),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if name.is_empty() {
                literal.push('$');
                rest = after;
                continue;
            }
            if !literal.is_empty() {
                parts.push(LogPart::Literal(std::mem::take(&mut literal)));
            }
            let var = LogVar::of(name);
            if let LogVar::Unknown(n) = &var {
                if !unknown.contains(n) {
                    unknown.push(n.clone());
                }
            }
            parts.push(LogPart::Var(var));
            rest = next;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(LogPart::Literal(literal));
        }
        (
            LogFormat {
                source: format.to_owned(),
                escape,
                parts,
            },
            unknown,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_literals() {
        let (f, unknown) = LogFormat::parse(
            "$remote_addr [${time_local}] \"$http_user_agent\" $foo $ x$",
            LogEscape::Default,
        );
        assert_eq!(unknown, vec!["foo".to_owned()]);
        assert_eq!(
            f.parts,
            vec![
                LogPart::Var(LogVar::RemoteAddr),
                LogPart::Literal(" [".into()),
                LogPart::Var(LogVar::TimeLocal),
                LogPart::Literal("] \"".into()),
                LogPart::Var(LogVar::Header("user-agent".into())),
                LogPart::Literal("\" ".into()),
                LogPart::Var(LogVar::Unknown("foo".into())),
                LogPart::Literal(" $ x$".into()),
            ]
        );
    }

    #[test]
    fn the_default_format_has_no_unknown_variable() {
        let (f, unknown) = LogFormat::parse(DEFAULT_LOG_FORMAT, LogEscape::Default);
        assert!(unknown.is_empty());
        assert_eq!(f.parts.len(), 33);
    }
}
