//! The connection's timer decisions, the choice of connections to close under descriptor
//! pressure, and reading the descriptor limit.

use super::connection::{Next, Why};
use super::*;

const LIMITS: ConnectionLimits = ConnectionLimits {
    header_timeout: Duration::from_secs(60),
    keepalive_timeout: Duration::from_secs(75),
    keepalive_requests: 3,
    max_head: MIN_HEAD,
    proxy_protocol: None,
    ignore_invalid_headers: true,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn first_head_then_keepalive_then_a_later_head() {
    let started = Instant::now();
    let conn = Arc::new(Conn::new(started));
    // Nothing yet: the first head's deadline, bytes or not.
    let first = started + LIMITS.header_timeout;
    assert_eq!(conn.next(started, started, &LIMITS), Next::Sleep(first));
    conn.read();
    assert_eq!(conn.next(started, started, &LIMITS), Next::Sleep(first));
    assert_eq!(
        conn.next(first, started, &LIMITS),
        Next::Close(Why::FirstHead)
    );

    // A request in flight: nothing to close, look again later.
    let (guard, last) = conn.begin(false, LIMITS.keepalive_requests, false);
    assert!(!last);
    let now = Instant::now() + Duration::from_secs(600);
    assert_eq!(
        conn.next(now, started, &LIMITS),
        Next::Sleep(now + LIMITS.header_timeout)
    );
    // Bytes of the request body do not start a head.
    conn.read();

    // Its response ended: idle, looked at again within the header timeout (a head may begin),
    // closed after the keep-alive timeout.
    drop(guard);
    let idle = Instant::now();
    let look = idle + LIMITS.header_timeout;
    assert_eq!(conn.next(idle, started, &LIMITS), Next::Sleep(look));
    let Next::Sleep(at) = conn.next(look, started, &LIMITS) else {
        panic!("closed before the keep-alive timeout");
    };
    assert!(at >= idle + LIMITS.keepalive_timeout - ms(2), "{at:?}");
    assert!(at <= idle + LIMITS.keepalive_timeout + ms(2), "{at:?}");
    assert_eq!(
        conn.next(at, started, &LIMITS),
        Next::Close(Why::Idle),
        "idle for the keep-alive timeout"
    );

    // A byte of the next head: the header timeout from it, shorter than what idle time is left.
    conn.read();
    let Next::Sleep(head) = conn.next(Instant::now(), started, &LIMITS) else {
        panic!("closed at once");
    };
    assert!(head < at, "{head:?} {at:?}");
    assert_eq!(conn.next(head, started, &LIMITS), Next::Close(Why::Head));

    // The head completed: in flight again; the third request is the last.
    let (_second, last) = conn.begin(false, LIMITS.keepalive_requests, false);
    assert!(!last);
    let (_third, last) = conn.begin(false, LIMITS.keepalive_requests, false);
    assert!(last, "the third of three requests is the last");
}

#[test]
fn http2_is_idle_without_streams_whatever_it_reads() {
    let started = Instant::now();
    let conn = Arc::new(Conn::new(started));
    let (guard, _) = conn.begin(true, LIMITS.keepalive_requests, false);
    drop(guard);
    // Pings and settings are read while no stream is open: still idle.
    conn.read();
    assert!(conn.idle_since().is_some());
    let later = Instant::now() + LIMITS.keepalive_timeout + ms(5);
    assert_eq!(conn.next(later, started, &LIMITS), Next::Close(Why::Idle));
}

#[test]
fn busy_connections_are_looked_at_again_before_any_idle_deadline() {
    let limits = ConnectionLimits {
        keepalive_timeout: Duration::ZERO,
        ..LIMITS
    };
    let started = Instant::now();
    let conn = Arc::new(Conn::new(started));
    let (guard, _) = conn.begin(true, limits.keepalive_requests, false);
    let now = Instant::now();
    // No busy loop with a keep-alive timeout of 0.
    assert_eq!(
        conn.next(now, started, &limits),
        Next::Sleep(now + Duration::from_secs(1))
    );
    drop(guard);
    assert_eq!(
        conn.next(Instant::now() + ms(2), started, &limits),
        Next::Close(Why::Idle)
    );
}

#[tokio::test]
async fn the_idle_connections_that_waited_longest_are_closed_first() {
    let mut open = Registry::new();
    let mut idle = Vec::new();
    // 17 connections idle one after the other, one with a request in flight, one with a head
    // begun.
    for _ in 0..17 {
        let conn = Arc::new(Conn::new(open.epoch));
        let (guard, _) = conn.begin(false, 100, false);
        drop(guard);
        open.spawn(conn.clone(), std::future::pending());
        idle.push(conn);
        tokio::time::sleep(ms(2)).await;
    }
    let busy = Arc::new(Conn::new(open.epoch));
    let _in_flight = busy.begin(false, 100, false);
    open.spawn(busy.clone(), std::future::pending());
    let reading = Arc::new(Conn::new(open.epoch));
    drop(reading.begin(false, 100, false).0);
    reading.read();
    open.spawn(reading.clone(), std::future::pending());

    // An eighth of 17: the 2 oldest.
    assert_eq!(open.reclaim(), Reclaimed::Asked(2));
    let asked: Vec<bool> = idle.iter().map(|c| c.reclaiming()).collect();
    assert_eq!(&asked[..3], &[true, true, false]);
    assert!(asked[2..].iter().all(|a| !a));
    assert!(!busy.reclaiming() && !reading.reclaiming());
    // Not again while they close.
    assert_eq!(open.reclaim(), Reclaimed::Pending);
}

#[tokio::test]
async fn nothing_idle_nothing_reclaimed() {
    let mut open = Registry::new();
    assert_eq!(open.reclaim(), Reclaimed::NoneIdle);
    let busy = Arc::new(Conn::new(open.epoch));
    let _in_flight = busy.begin(false, 100, false);
    open.spawn(busy, std::future::pending());
    assert_eq!(open.reclaim(), Reclaimed::NoneIdle);
}

#[test]
fn batches_are_nginx_s() {
    assert_eq!(reclaim_batch(0), 0);
    assert_eq!(reclaim_batch(1), 1);
    assert_eq!(reclaim_batch(15), 1);
    assert_eq!(reclaim_batch(16), 2);
    assert_eq!(reclaim_batch(1000), 32);
}

#[test]
fn the_open_files_soft_limit() {
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max open files            1024                 524288               files     \n";
    assert_eq!(parse_open_files_limit(limits), Some(1024));
    let unlimited = "Max open files            unlimited            unlimited            files\n";
    assert_eq!(parse_open_files_limit(unlimited), None);
    assert_eq!(parse_open_files_limit(""), None);
}

#[test]
fn descriptor_shortage_is_emfile_or_enfile() {
    assert!(is_descriptor_shortage(&std::io::Error::from_raw_os_error(
        24
    )));
    assert!(is_descriptor_shortage(&std::io::Error::from_raw_os_error(
        23
    )));
    assert!(!is_descriptor_shortage(&std::io::Error::from_raw_os_error(
        103
    )));
}

/// An idle connection's task holds its future for as long as it lives: the socket, the service
/// and the timer, and little else (as an `async fn` with a `select!` it was 2.7 KB).
#[test]
fn a_connection_s_future_is_small() {
    struct Service;
    impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Service {
        type Response = http::Response<http_body_util::Empty<bytes::Bytes>>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn call(&self, _: http::Request<hyper::body::Incoming>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(http_body_util::Empty::new())))
        }
    }
    type Body = http_body_util::Empty<bytes::Bytes>;
    let size =
        std::mem::size_of::<super::connection::Driven<tokio::net::TcpStream, Service, Body>>();
    assert!(size <= 512, "{size} bytes");
}
