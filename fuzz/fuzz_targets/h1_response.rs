//! The lean upstream client's reading of a response (`crates/proxy/src/h1.rs`): the head with
//! httparse, informational responses read past, the body's framing (length, chunked with trailers,
//! until close), through `proxy::fuzzing::read_response`.
//!
//! Input: one control byte, then the bytes the pod sends. Bit 0 of the control byte: the request
//! was a HEAD (else a GET); the other bits: the size of each read (1 to 128 bytes).
//!
//! Checks: no panic; the same response (or a failure) whether the bytes come in one read or in
//! pieces; a body no longer than its declared length and none where none may be.
#![no_main]

use http::{header, Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use proxy::fuzzing::read_response;

/// Heads, chunk-size lines and trailer blocks past this are refused only when they come in
/// pieces (`MAX_HEAD` in h1.rs): the two ways may differ beyond it.
const MAX_HEAD: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let method = if control & 1 == 1 {
        Method::HEAD
    } else {
        Method::GET
    };
    let read = usize::from(control >> 1) + 1;
    let whole = read_response(&method, [bytes]);
    let pieces = read_response(&method, bytes.chunks(read));
    if bytes.len() <= MAX_HEAD {
        match (&whole, &pieces) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.head.status(), b.head.status());
                assert_eq!(a.head.version(), b.head.version());
                assert_eq!(a.head.headers(), b.head.headers());
                assert_eq!(a.body, b.body, "body, reads of {read}");
                assert_eq!(a.trailers, b.trailers);
            }
            (Err(_), Err(_)) => {}
            _ => panic!("one read: {whole:?}\nreads of {read}: {pieces:?}"),
        }
    }
    let Ok(response) = whole else {
        return;
    };
    assert!(response.body.len() <= bytes.len());
    let status = response.head.status();
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        assert!(response.body.is_empty() && response.trailers.is_none());
    }
    let headers = response.head.headers();
    if let (Some(length), false) = (
        headers.get(header::CONTENT_LENGTH),
        headers.contains_key(header::TRANSFER_ENCODING),
    ) {
        if let Some(length) = length.to_str().ok().and_then(|l| l.parse::<usize>().ok()) {
            assert!(response.body.len() <= length);
        }
    }
});
