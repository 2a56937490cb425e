//! Headers read from real loopback sockets: what follows them is left for TLS and HTTP, whether
//! it comes in the same segment or the header comes in pieces.

use super::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A v2 header: PROXY (or LOCAL) over TCP/IPv4 from 192.0.2.7:4000 to 198.51.100.1:443, with
/// `tlv` bytes after the addresses.
fn v2(local: bool, tlv: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(if local { 0x20 } else { 0x21 });
    h.push(0x11);
    let len = u16::try_from(12 + tlv.len()).unwrap();
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1]);
    h.extend_from_slice(&4000u16.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h.extend_from_slice(tlv);
    h
}

/// Write `pieces` to a fresh connection (each a write of its own, flushed), read its header on
/// the server side, then what is left until the client closes.
async fn exchange(pieces: Vec<Vec<u8>>) -> (Result<Header, Error>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        for p in pieces {
            s.write_all(&p).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        s.shutdown().await.unwrap();
    });
    let (mut server, _) = listener.accept().await.unwrap();
    let header = read(&mut server).await;
    let mut rest = Vec::new();
    if header.is_ok() {
        server.read_to_end(&mut rest).await.unwrap();
    }
    client.await.unwrap();
    (header, rest)
}

fn proxied(source: &str, destination: &str) -> Header {
    Header::Proxied {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

#[tokio::test]
async fn v1_then_http_in_one_segment() {
    let (h, rest) = exchange(vec![
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
    ])
    .await;
    assert_eq!(
        h.unwrap(),
        proxied("192.168.0.1:56324", "192.168.0.11:1234")
    );
    assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
}

#[tokio::test]
async fn v1_in_pieces_split_inside_its_crlf() {
    let (h, rest) = exchange(vec![
        b"PRO".to_vec(),
        b"XY TCP6 2001:db8::1 2001:db8::2 1 2\r".to_vec(),
        b"\nrest".to_vec(),
    ])
    .await;
    assert_eq!(h.unwrap(), proxied("[2001:db8::1]:1", "[2001:db8::2]:2"));
    assert_eq!(rest, b"rest");
}

#[tokio::test]
async fn v1_unknown_keeps_the_peer() {
    let (h, rest) = exchange(vec![b"PROXY UNKNOWN\r\nX".to_vec()]).await;
    assert_eq!(h.unwrap(), Header::Local);
    assert_eq!(rest, b"X");
}

#[tokio::test]
async fn v2_with_tlvs_then_bytes_in_one_segment() {
    // A TLV (type 0x04, NOOP, 3 bytes) after the addresses.
    let mut bytes = v2(false, &[0x04, 0, 3, 1, 2, 3]);
    bytes.extend_from_slice(b"\x16\x03\x01");
    let (h, rest) = exchange(vec![bytes]).await;
    assert_eq!(h.unwrap(), proxied("192.0.2.7:4000", "198.51.100.1:443"));
    assert_eq!(rest, b"\x16\x03\x01");
}

#[tokio::test]
async fn v2_in_pieces() {
    let bytes = v2(false, &[]);
    let (h, rest) = exchange(vec![
        bytes[..5].to_vec(),
        bytes[5..20].to_vec(),
        [&bytes[20..], b"GET"].concat(),
    ])
    .await;
    assert_eq!(h.unwrap(), proxied("192.0.2.7:4000", "198.51.100.1:443"));
    assert_eq!(rest, b"GET");
}

#[tokio::test]
async fn v2_local_keeps_the_peer() {
    let (h, rest) = exchange(vec![[v2(true, &[]), b"GET".to_vec()].concat()]).await;
    assert_eq!(h.unwrap(), Header::Local);
    assert_eq!(rest, b"GET");
}

#[tokio::test]
async fn refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain HTTP", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        ("a TLS ClientHello", b"\x16\x03\x01\x00\x05hello".to_vec()),
        ("HTTP starting with P", b"POST / HTTP/1.1\r\n\r\n".to_vec()),
        ("v1 garbage", b"PROXY TCP4 a b c d\r\n".to_vec()),
        ("v1 IPv6 in TCP4", b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec()),
        (
            "v1 without CRLF",
            [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat(),
        ),
        ("v2 bad version", {
            let mut h = v2(false, &[]);
            h[12] = 0x31;
            h
        }),
        ("v2 too short for its addresses", {
            let mut h = v2(false, &[]);
            h[15] = 4;
            h.truncate(20);
            h
        }),
        ("v2 too large", {
            let mut h = v2(false, &[]);
            h[14] = 0xff;
            h
        }),
        ("the connection ends inside", b"PROXY TCP4 1.2.3.4".to_vec()),
        ("nothing", Vec::new()),
    ];
    for (what, bytes) in cases {
        let (h, _) = exchange(vec![bytes]).await;
        assert!(h.is_err(), "{what}: {h:?}");
    }
}

#[test]
fn parse_takes_whole_headers_only() {
    assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nX").is_err());
    let mut h = v2(false, &[]);
    h.push(0);
    assert!(parse(&h).is_err());
    assert!(parse(&[]).is_err());
}

#[test]
fn in_memory_whatever_the_segments_only_the_header_is_taken() {
    let v1 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n".to_vec();
    let v2 = v2(true, &[]);
    for (header, want) in [
        (v1, proxied("192.168.0.1:56324", "192.168.0.11:1234")),
        (v2, Header::Local),
    ] {
        let bytes = [header.as_slice(), b"GET / HTTP/1.1\r\n"].concat();
        for segment in [1, 2, 5, 16, 17, 1000] {
            let (h, taken) = read_in_memory(&bytes, segment);
            assert_eq!(h.unwrap(), want, "segment {segment}");
            assert_eq!(taken, header.len(), "segment {segment}");
        }
        let (h, _) = read_in_memory(&header[..header.len() - 1], 3);
        assert!(matches!(h, Err(Error::Closed)), "{h:?}");
    }
}
