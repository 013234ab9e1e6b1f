//! Request heads checked before the HTTP layer reads them, so that a head it would refuse gets
//! a problem body saying why instead of an empty 400 or 431.
//!
//! actix-http answers a head it cannot parse (a NUL in a header, a head over its buffer, a
//! malformed Content-Length...) itself, with an empty body, before any middleware runs.
//! [`CheckedStream`] sits between the socket and the HTTP layer and frames the requests of a
//! connection: it holds each head until it is complete, parses it with the same parser and the
//! same rules, and passes it on; the body after it, framed by its Content-Length, passes
//! through untouched. A head that would be refused is replaced by a stand-in request carrying
//! the refusal in [`REFUSAL_HEADER`], signed with this process's nonce; [`refusal_of`] reads it
//! back and the server answers it as an [`ApiError`] with `connection: close`. Nothing after a
//! refused head is read.
//!
//! Where the framing cannot be followed cheaply (a chunked body, a WebSocket upgrade, CONNECT)
//! the rest of the connection passes through unchecked, as it did before.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use actix_web::dev::RequestHead;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// The largest request head accepted, request line and headers together: the HTTP layer's own
/// limit (its read buffer), so that every head it took before is still taken.
pub const MAX_HEAD_BYTES: usize = 128 * 1024;
/// As many headers as the HTTP layer's parser takes.
const MAX_HEADERS: usize = 96;
/// Carries a refusal from the stream to the server, as `<nonce> <status> <detail>`.
pub const REFUSAL_HEADER: &str = "x-puhui-head-refused";

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The head is larger than [`MAX_HEAD_BYTES`] (431).
    TooLarge { largest_header: Option<String> },
    /// The head is not a request the server can read (400).
    Malformed(String),
}

impl Refusal {
    pub fn into_error(self) -> ApiError {
        match self {
            Refusal::TooLarge { largest_header } => ApiError::HeadTooLarge {
                limit: MAX_HEAD_BYTES,
                largest_header,
            },
            Refusal::Malformed(detail) => ApiError::Malformed(detail),
        }
    }

    fn encode(&self) -> String {
        let (status, detail) = match self {
            Refusal::TooLarge { largest_header } => {
                (431, largest_header.clone().unwrap_or_default())
            }
            Refusal::Malformed(detail) => (400, detail.clone()),
        };
        // The detail goes into a header value: keep it visible ASCII.
        let detail: String = detail
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        format!("{} {status} {detail}", nonce())
    }

    fn decode(value: &str) -> Option<Refusal> {
        let rest = value.strip_prefix(nonce())?.strip_prefix(' ')?;
        let (status, detail) = rest.split_once(' ')?;
        match status {
            "431" => Some(Refusal::TooLarge {
                largest_header: (!detail.is_empty()).then(|| detail.to_owned()),
            }),
            "400" => Some(Refusal::Malformed(detail.to_owned())),
            _ => None,
        }
    }
}

/// A random value of this process, so that no client can make up a refusal.
fn nonce() -> &'static str {
    static NONCE: OnceLock<String> = OnceLock::new();
    NONCE.get_or_init(|| hex::encode(crate::config::random_bytes::<16>()))
}

/// The refusal a stand-in request carries, if the request is one.
pub fn refusal_of(head: &RequestHead) -> Option<Refusal> {
    let value = head.headers.get(REFUSAL_HEADER)?.to_str().ok()?;
    Refusal::decode(value)
}

/// The request that takes a refused head's place.
fn stand_in_request(refusal: &Refusal) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nhost: puhui\r\nconnection: close\r\n{REFUSAL_HEADER}: {}\r\n\r\n",
        refusal.encode()
    )
    .into_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a head.
    Head,
    /// This many body bytes follow before the next head.
    Body(u64),
    /// The framing is not followed any more: everything passes.
    Unchecked,
    /// A head was refused: nothing more is read.
    Refused,
}

/// What follows a head that was accepted.
enum Framing {
    Length(u64),
    Unchecked,
}

/// Frames a connection's bytes into heads and bodies (pure: bytes in, bytes out).
pub struct HeadFramer {
    state: State,
    /// The start of a head not yet complete.
    head: Vec<u8>,
    /// Bytes ready for the HTTP layer, from `out_at` on.
    out: Vec<u8>,
    out_at: usize,
}

impl Default for HeadFramer {
    fn default() -> Self {
        HeadFramer {
            state: State::Head,
            head: Vec::new(),
            out: Vec::new(),
            out_at: 0,
        }
    }
}

impl HeadFramer {
    /// Takes bytes read from the client.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match self.state {
                State::Refused => return,
                State::Unchecked => {
                    self.out.extend_from_slice(input);
                    return;
                }
                State::Body(left) => {
                    let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    self.out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(left)
                    };
                }
                State::Head => {
                    self.head.extend_from_slice(input);
                    // A head can only be complete, or wrong in a way worth reporting, once a
                    // line has ended (or it is over the limit); parsing only then keeps a
                    // client that sends a byte at a time from making the parse quadratic.
                    if !input.contains(&b'\n') && self.head.len() <= MAX_HEAD_BYTES {
                        return;
                    }
                    // What followed the head is read in the state the head left.
                    if let Some(rest) = self.take_head() {
                        self.feed(&rest);
                    }
                    return;
                }
            }
        }
    }

    /// The client closed its side: a partial head goes on as it is, for the HTTP layer to
    /// treat as it treats any truncated request.
    pub fn end_of_input(&mut self) {
        if self.state == State::Head {
            let head = std::mem::take(&mut self.head);
            self.out.extend_from_slice(&head);
        }
    }

    /// Bytes ready for the HTTP layer.
    pub fn ready(&self) -> &[u8] {
        &self.out[self.out_at..]
    }

    pub fn consume(&mut self, n: usize) {
        self.out_at += n;
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
        }
    }

    fn passes_through(&self) -> bool {
        self.state == State::Unchecked && self.ready().is_empty()
    }

    fn refused(&self) -> bool {
        self.state == State::Refused
    }

    /// Tries to parse the held head. `None` while it is incomplete; otherwise the bytes after
    /// it, with the state set for what follows.
    fn take_head(&mut self) -> Option<Vec<u8>> {
        match check_head(&self.head) {
            HeadCheck::Incomplete => None,
            HeadCheck::Refused(refusal) => {
                tracing::debug!(?refusal, "request head refused");
                self.out.extend_from_slice(&stand_in_request(&refusal));
                self.head = Vec::new();
                self.state = State::Refused;
                Some(Vec::new())
            }
            HeadCheck::Accepted { len, framing } => {
                let rest = self.head.split_off(len);
                let head = std::mem::take(&mut self.head);
                self.out.extend_from_slice(&head);
                self.state = match framing {
                    Framing::Length(0) => State::Head,
                    Framing::Length(n) => State::Body(n),
                    Framing::Unchecked => State::Unchecked,
                };
                Some(rest)
            }
        }
    }
}

enum HeadCheck {
    Incomplete,
    Refused(Refusal),
    Accepted { len: usize, framing: Framing },
}

/// The HTTP layer's rules for a request head (its parser, its limits, its checks of
/// Content-Length, Transfer-Encoding and Host), with a reason for each refusal.
fn check_head(bytes: &[u8]) -> HeadCheck {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD_BYTES => {
            HeadCheck::Refused(Refusal::TooLarge {
                largest_header: largest_header(bytes),
            })
        }
        Ok(httparse::Status::Partial) => HeadCheck::Incomplete,
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => {
            HeadCheck::Refused(Refusal::TooLarge {
                largest_header: largest_header(bytes),
            })
        }
        Ok(httparse::Status::Complete(len)) => match framing(&request) {
            Ok(framing) => HeadCheck::Accepted { len, framing },
            Err(detail) => HeadCheck::Refused(Refusal::Malformed(detail)),
        },
        Err(error) => HeadCheck::Refused(Refusal::Malformed(describe(error, bytes))),
    }
}

/// What follows an accepted head, or why the HTTP layer would refuse it.
fn framing(request: &httparse::Request<'_, '_>) -> Result<Framing, String> {
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or_default();
    let http_11 = request.version == Some(1);
    if actix_web::http::Uri::try_from(path).is_err() {
        return Err("the request target is not a valid URI".into());
    }
    let mut content_length = None;
    let mut transfer_encoding = None;
    let mut host = false;
    let mut websocket = false;
    for h in request.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .ok()
            .filter(|v| v.is_ascii())
            .map(str::trim);
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err("the request has more than one Content-Length header".into());
            }
            let length = value
                .filter(|v| !v.starts_with('+'))
                .and_then(|v| v.parse::<u64>().ok());
            match length {
                Some(n) => content_length = Some(n),
                None => return Err("the Content-Length header is not a number of bytes".into()),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http_11 {
                return Err("Transfer-Encoding is not allowed in an HTTP/1.0 request".into());
            }
            if transfer_encoding.is_some() {
                return Err("the request has more than one Transfer-Encoding header".into());
            }
            transfer_encoding = Some(value.unwrap_or_default());
        } else if h.name.eq_ignore_ascii_case("host") {
            if host {
                return Err("the request has more than one Host header".into());
            }
            host = true;
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            websocket |= value.is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        }
    }
    if http_11 && !host {
        return Err("an HTTP/1.1 request must have a Host header".into());
    }
    if let Some(encoding) = transfer_encoding {
        if !encoding.eq_ignore_ascii_case("chunked") {
            return Err("the only Transfer-Encoding accepted is chunked".into());
        }
        if content_length.is_some() {
            return Err("a request cannot have both Content-Length and Transfer-Encoding".into());
        }
        return Ok(Framing::Unchecked);
    }
    if websocket {
        return Ok(Framing::Unchecked);
    }
    if !http_11 && method == "POST" && content_length.is_none() {
        return Err("an HTTP/1.0 POST must have a Content-Length header".into());
    }
    match content_length {
        Some(n) => Ok(Framing::Length(n)),
        None if method == "CONNECT" => Ok(Framing::Unchecked),
        None => Ok(Framing::Length(0)),
    }
}

/// The parser's error in words, naming the header where it can.
fn describe(error: httparse::Error, bytes: &[u8]) -> String {
    match error {
        httparse::Error::HeaderValue => match header_with_bad_value(bytes) {
            Some((name, 0)) => format!("the value of the header `{name}` contains a NUL byte"),
            Some((name, byte)) => {
                format!("the value of the header `{name}` contains the control byte {byte:#04x}")
            }
            None => "a header value contains a byte that is not allowed".into(),
        },
        httparse::Error::HeaderName => {
            "a header name contains a character that is not allowed".into()
        }
        httparse::Error::Token => {
            "the request line's method or target contains a character that is not allowed".into()
        }
        httparse::Error::Version => "the request line does not end in HTTP/1.0 or HTTP/1.1".into(),
        httparse::Error::NewLine => "a line of the request head does not end with CRLF".into(),
        httparse::Error::TooManyHeaders => {
            format!("the request has more than {MAX_HEADERS} headers")
        }
        httparse::Error::Status => "the request head is not an HTTP request".into(),
    }
}

/// The first header line whose value holds a control byte, with that byte.
fn header_with_bad_value(bytes: &[u8]) -> Option<(String, u8)> {
    bytes.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let bad = line[colon + 1..]
            .iter()
            .copied()
            .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)?;
        Some((printable_name(&line[..colon]), bad))
    })
}

/// The name of the longest header line in a head, to say which header made it too large.
fn largest_header(bytes: &[u8]) -> Option<String> {
    let line = bytes
        .split(|&b| b == b'\n')
        .skip(1)
        .max_by_key(|line| line.len())?;
    let colon = line.iter().position(|&b| b == b':')?;
    Some(printable_name(&line[..colon]))
}

/// A header name as the client sent it, in lower case (as the server names headers), cut short
/// and stripped to visible ASCII.
fn printable_name(name: &[u8]) -> String {
    name.iter()
        .take(64)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b.to_ascii_lowercase())
            } else {
                '?'
            }
        })
        .collect()
}

/// A client connection whose request heads are checked before the HTTP layer reads them.
pub struct CheckedStream {
    inner: TcpStream,
    framer: HeadFramer,
}

impl CheckedStream {
    pub fn new(inner: TcpStream) -> Self {
        CheckedStream {
            inner,
            framer: HeadFramer::default(),
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsyncRead for CheckedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let ready = this.framer.ready();
            if !ready.is_empty() {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.framer.consume(n);
                return Poll::Ready(Ok(()));
            }
            if this.framer.refused() {
                // The stand-in request has been read and asks to close the connection;
                // the server answers it and shuts the connection down. Nothing wakes this
                // read, which is not needed again.
                return Poll::Pending;
            }
            if this.framer.passes_through() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut scratch = [0u8; 8192];
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    this.framer.end_of_input();
                    if this.framer.ready().is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => this.framer.feed(read.filled()),
            }
        }
    }
}

impl AsyncWrite for CheckedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
