use super::*;

/// Feeds `input` in pieces of `piece` bytes and returns what the HTTP layer would read.
fn frame(input: &[u8], piece: usize) -> (Vec<u8>, HeadFramer) {
    let mut framer = HeadFramer::default();
    let mut read = Vec::new();
    for chunk in input.chunks(piece) {
        framer.feed(chunk);
        read.extend_from_slice(framer.ready());
        let n = framer.ready().len();
        framer.consume(n);
    }
    (read, framer)
}

fn refusal_in(read: &[u8]) -> Option<Refusal> {
    let text = String::from_utf8_lossy(read);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{REFUSAL_HEADER}: ")))?;
    Refusal::decode(line)
}

const GET: &[u8] = b"GET /v1/products HTTP/1.1\r\nhost: a\r\nauthorization: Bearer t\r\n\r\n";

#[test]
fn well_formed_requests_pass_unchanged_however_they_are_cut() {
    let post = b"POST /v1/claims HTTP/1.1\r\nhost: a\r\ncontent-length: 27\r\n\r\n{\"a\":\"GET / HTTP/1.1\\r\\n\0\"}";
    let mut stream = Vec::new();
    stream.extend_from_slice(GET);
    stream.extend_from_slice(post);
    stream.extend_from_slice(GET);
    for piece in [1, 2, 7, 64, 8192] {
        let (read, framer) = frame(&stream, piece);
        assert_eq!(read, stream, "pieces of {piece}");
        assert_eq!(framer.state, State::Head);
    }
}

#[test]
fn a_nul_in_a_header_is_refused_naming_the_header() {
    let bad = b"GET /v1/products HTTP/1.1\r\nhost: a\r\nauthorization: Bearer ab\0cd\r\n\r\n";
    for piece in [1, 5, 8192] {
        let (read, framer) = frame(bad, piece);
        assert!(framer.refused());
        let refusal = refusal_in(&read).expect("a stand-in request");
        assert_eq!(
            refusal,
            Refusal::Malformed(
                "the value of the header `authorization` contains a NUL byte".into()
            )
        );
        assert!(read.starts_with(b"GET / HTTP/1.1\r\n"));
    }
}

#[test]
fn a_refusal_after_good_requests_keeps_them_and_reads_nothing_after_it() {
    let mut stream = GET.to_vec();
    stream.extend_from_slice(b"GET / HTTP/1.1\r\nhost: a\r\nx: \x01\r\n\r\n");
    stream.extend_from_slice(GET);
    let (read, framer) = frame(&stream, 8192);
    assert!(read.starts_with(GET));
    assert!(framer.refused());
    let stand_in = &read[GET.len()..];
    assert_eq!(
        refusal_in(stand_in),
        Some(Refusal::Malformed(
            "the value of the header `x` contains the control byte 0x01".into()
        ))
    );
    assert!(!stand_in.windows(9).any(|w| w == b"/products"));
}

#[test]
fn a_head_over_the_limit_is_431_naming_its_largest_header() {
    let mut big = b"GET / HTTP/1.1\r\nhost: a\r\nx-big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b"\r\n\r\n");
    let (read, framer) = frame(&big, 8192);
    assert!(framer.refused());
    assert_eq!(
        refusal_in(&read),
        Some(Refusal::TooLarge {
            largest_header: Some("x-big".into())
        })
    );
    // Refused as soon as the limit is passed, not after the megabyte.
    assert!(framer.head.is_empty());
}

#[test]
fn heads_the_http_layer_refuses_are_refused_with_a_reason() {
    let cases: [(&[u8], &str); 8] = [
        (b"GET / HTTP/1.1\r\n\r\n", "Host header"),
        (b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", "more than one Host"),
        (b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: +5\r\n\r\n", "not a number"),
        (b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n", "more than one Content-Length"),
        (b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\n", "only Transfer-Encoding"),
        (b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n", "both"),
        (b"POST / HTTP/1.0\r\n\r\n", "HTTP/1.0 POST"),
        (b"GET / HTTP/2.0\r\nhost: a\r\n\r\n", "HTTP/1.0 or HTTP/1.1"),
    ];
    for (head, reason) in cases {
        let (read, _) = frame(head, 8192);
        match refusal_in(&read) {
            Some(Refusal::Malformed(detail)) => {
                assert!(detail.contains(reason), "{detail} for {head:?}")
            }
            other => panic!("{other:?} for {head:?}"),
        }
    }
}

#[test]
fn a_chunked_body_leaves_the_rest_of_the_connection_unchecked() {
    let stream =
        b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\n\0\0\0\r\n0\r\n\r\n";
    let (read, framer) = frame(stream, 4);
    assert_eq!(read, stream);
    assert!(framer.passes_through());
}

#[test]
fn a_client_cannot_make_up_a_refusal() {
    assert_eq!(Refusal::decode("0000 400 made up"), None);
    let genuine = Refusal::Malformed("x".into());
    assert_eq!(Refusal::decode(&genuine.encode()), Some(genuine));
}

#[test]
fn a_truncated_head_goes_on_at_end_of_input() {
    let mut framer = HeadFramer::default();
    framer.feed(b"GET / HT");
    assert!(framer.ready().is_empty());
    framer.end_of_input();
    assert_eq!(framer.ready(), b"GET / HT");
}
