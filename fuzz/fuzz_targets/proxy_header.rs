//! The PROXY protocol header of `use-proxy-protocol` (`crates/proxy/src/server/proxy_protocol.rs`):
//! any bytes a client may send first, read as the accept loop reads a socket (peeked, only the
//! header's bytes taken), arriving in segments of any size.
//!
//! Checks: no panic; the header read and the bytes taken are the same whatever the segments;
//! never more is taken than the header's own bytes (what follows is TLS's or HTTP's): a header
//! read is exactly the bytes taken, which parse alone to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy::fuzzing::{parse_proxy_header, read_proxy_header};

fuzz_target!(|input: (u8, &[u8])| {
    let (segment, bytes) = input;
    let (whole, taken) = read_proxy_header(bytes, bytes.len());
    assert!(taken <= bytes.len());
    let (pieces, taken_in_pieces) = read_proxy_header(bytes, usize::from(segment));
    assert_eq!(
        whole.as_ref().ok(),
        pieces.as_ref().ok(),
        "segments of {segment}"
    );
    if let Ok(header) = whole {
        assert_eq!(taken, taken_in_pieces);
        let alone = parse_proxy_header(&bytes[..taken]).ok();
        assert_eq!(alone, Some(header));
        // What follows the header is left: the same header with anything after it.
        let mut more = bytes[..taken].to_vec();
        more.extend_from_slice(b"\x16\x03\x01GET / HTTP/1.1\r\n");
        let (again, taken_again) = read_proxy_header(&more, usize::from(segment));
        assert_eq!(again.ok(), Some(header));
        assert_eq!(taken_again, taken);
    }
});
