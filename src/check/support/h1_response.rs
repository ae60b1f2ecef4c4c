//! One HTTP/1.1 exchange on a connection of the lean path ([`super::h1`]):
//! the request written whole, then the response read on the same task — its
//! head parsed by httparse (hyper's own parser), its body by its framing (a
//! length, chunks, or until the server closes), kept up to the cap by
//! [`CappedBody`].

use std::io;
use std::mem::MaybeUninit;
use std::time::Instant;

use http::{HeaderMap, HeaderName, HeaderValue};
use httparse::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::h1::LeanError;
use super::http::{CappedBody, Fetched};

/// The most bytes a response head may take: hyper's default bound on its
/// read buffer (8 KiB and 4 KiB for each of 100 headers).
const MAX_HEAD: usize = 8192 + 4096 * 100;

/// The most header lines a response may have (hyper's default).
const MAX_HEADERS: usize = 100;

/// The most bytes of a chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;

/// Bytes asked of the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// What one parse of a response head found.
enum Parsed {
    /// The final head.
    Final(Head),
    /// An informational (1xx) head, consumed: the final one follows.
    Informational,
    /// Not a whole head yet: more bytes are needed.
    Partial,
}

/// A keep-alive connection and what was read from it and not yet used.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start.
    start: usize,
}

/// How the end of a response body is found (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body: a HEAD request, or a 1xx, 204 or 304 status.
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes: the connection is not used again.
    UntilClose,
}

/// What the caller reads of a response besides its status and body.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// A HEAD request: its response has no body, whatever it announces.
    pub head_only: bool,
    /// Whether the response headers are kept (something reads them): most
    /// checks look at the status and the body only.
    pub keep_headers: bool,
}

/// A response head, parsed.
struct Head {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    /// Whether the connection may carry another request after this one.
    keep_alive: bool,
}

/// How an exchange failed, and whether sending the request again on a new
/// connection is safe.
pub struct ExchangeError {
    pub error: LeanError,
    /// The status, when the head had arrived.
    pub status: Option<u16>,
    /// Nothing of a response arrived: the server may have closed the idle
    /// connection as the request went out.
    pub nothing_received: bool,
    /// The request did not get through whole (its write failed).
    pub unsent: bool,
}

impl ExchangeError {
    fn before_response(error: LeanError, received: bool) -> Self {
        ExchangeError {
            error,
            status: None,
            nothing_received: !received,
            unsent: false,
        }
    }
}

impl Connection {
    pub fn new(stream: TcpStream) -> Self {
        Connection {
            stream,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Whether the idle connection still looks usable: the server has not
    /// closed it nor sent anything unasked. No system call when the socket
    /// has had no event since it was last drained.
    pub fn looks_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `wire` (a whole request) and reads the response, at most `cap`
    /// bytes of its body. `Ok` also says whether the connection may be
    /// used again.
    pub async fn exchange(
        &mut self,
        wire: &[u8],
        reading: Reading,
        cap: usize,
        started: Instant,
    ) -> Result<(Fetched, bool), ExchangeError> {
        if let Err(err) = self.stream.write_all(wire).await {
            return Err(ExchangeError {
                unsent: true,
                ..ExchangeError::before_response(LeanError::Io(err), false)
            });
        }
        let head = self.read_head(reading).await?;
        let time_to_headers = started.elapsed();
        let status = head.status;
        let broke_off = |error| ExchangeError {
            error,
            status: Some(status),
            nothing_received: false,
            unsent: false,
        };
        let announced = match head.framing {
            Framing::Length(len) => Some(len),
            Framing::Empty => Some(0),
            _ => None,
        };
        let mut body = CappedBody::new(announced, cap);
        let whole = match head.framing {
            Framing::Empty => true,
            Framing::Length(len) => self.read_length(len, &mut body).await.map_err(broke_off)?,
            Framing::Chunked => self.read_chunked(&mut body).await.map_err(broke_off)?,
            Framing::UntilClose => {
                self.read_to_close(&mut body).await.map_err(broke_off)?;
                false
            }
        };
        // Bytes past the response were not asked for: nothing more is
        // read from such a connection.
        let reusable = whole && head.keep_alive && self.start == self.buf.len();
        let fetched = body.finish(status, head.headers, time_to_headers, started);
        Ok((fetched, reusable))
    }

    /// Reads more of the response into the buffer; 0 at the end of the
    /// stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        // A read shorter than asked tells tokio the socket is drained, so an
        // idle connection costs no system call until the peer sends or
        // closes (see `looks_open`).
        self.stream.read_buf(&mut self.buf).await
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The final response head, informational ones (1xx but 101) skipped.
    async fn read_head(&mut self, reading: Reading) -> Result<Head, ExchangeError> {
        let mut received = false;
        // Bytes of informational heads skipped so far: a server sending
        // them without end is refused at the bound a head has.
        let mut skipped = 0usize;
        loop {
            match self.parse_head(reading, &mut skipped)? {
                Parsed::Final(head) => return Ok(head),
                Parsed::Informational => continue,
                Parsed::Partial => {}
            }
            received |= !self.pending().is_empty();
            match self.fill().await {
                Ok(0) => {
                    received |= !self.pending().is_empty();
                    return Err(ExchangeError::before_response(
                        LeanError::Closed { in_body: false },
                        received,
                    ));
                }
                Ok(_) => {}
                Err(err) => {
                    received |= !self.pending().is_empty();
                    return Err(ExchangeError::before_response(LeanError::Io(err), received));
                }
            }
        }
    }

    /// One parse of the pending bytes as a response head; an informational
    /// head is consumed and counted in `skipped`.
    ///
    /// Not async, so that the header slots (3.2 KB) live on this call's
    /// stack: held across `read_head`'s await, they made its future 3.3 KB,
    /// and every future that awaits it (the exchange, the fetch, the
    /// attempt, the probe) as much larger, each copied whole as it is made.
    fn parse_head(
        &mut self,
        reading: Reading,
        skipped: &mut usize,
    ) -> Result<Parsed, ExchangeError> {
        // Left uninitialised: filling 100 empty slots (3.2 KB) before
        // each parse was a fifth of the attempt's own `perf` samples.
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            &self.buf[self.start..],
            &mut slots,
        );
        match parsed {
            Ok(Status::Complete(len)) => {
                let head = head_of(&response, reading)
                    .map_err(|err| ExchangeError::before_response(err, true))?;
                self.start += len;
                let status = head.status;
                if (100..200).contains(&status) && status != 101 {
                    *skipped += len;
                    if *skipped > MAX_HEAD {
                        return Err(ExchangeError::before_response(
                            LeanError::Malformed(
                                "more than 400 KiB of informational (1xx) responses".into(),
                            ),
                            true,
                        ));
                    }
                    return Ok(Parsed::Informational);
                }
                Ok(Parsed::Final(head))
            }
            Ok(Status::Partial) if self.pending().len() > MAX_HEAD => {
                Err(ExchangeError::before_response(
                    LeanError::Malformed("the response head is larger than 400 KiB".into()),
                    true,
                ))
            }
            Ok(Status::Partial) => Ok(Parsed::Partial),
            Err(err) => Err(ExchangeError::before_response(
                LeanError::Malformed(format!("invalid HTTP response: {err}")),
                true,
            )),
        }
    }

    /// `len` bytes of body; `false` when the cap stopped the read.
    async fn read_length(&mut self, len: u64, body: &mut CappedBody) -> Result<bool, LeanError> {
        let mut left = len;
        loop {
            let take = self
                .pending()
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let kept = body.push(&self.buf[self.start..self.start + take]);
            self.start += take;
            left -= take as u64;
            if !kept {
                return Ok(false);
            }
            if left == 0 {
                return Ok(true);
            }
            self.fill_body().await?;
        }
    }

    /// The body up to the end of the stream; `false` when the cap stopped
    /// the read.
    async fn read_to_close(&mut self, body: &mut CappedBody) -> Result<bool, LeanError> {
        loop {
            let kept = body.push(self.pending());
            self.start = self.buf.len();
            if !kept {
                return Ok(false);
            }
            if self.fill().await.map_err(LeanError::Io)? == 0 {
                return Ok(true);
            }
        }
    }

    /// A chunked body and its trailers; `false` when the cap stopped the
    /// read.
    async fn read_chunked(&mut self, body: &mut CappedBody) -> Result<bool, LeanError> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(self.pending()) {
                    Ok(Status::Complete((used, size))) => {
                        self.start += used;
                        break size;
                    }
                    Ok(Status::Partial) if self.pending().len() > MAX_CHUNK_LINE => {
                        return Err(LeanError::Malformed("a chunk-size line is too long".into()));
                    }
                    Ok(Status::Partial) => self.fill_body().await?,
                    Err(_) => return Err(LeanError::Malformed("invalid chunk size".into())),
                }
            };
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(true);
            }
            if !self.read_length(size, body).await? {
                return Ok(false);
            }
            // The chunk's data ends with CRLF.
            while self.pending().len() < 2 {
                self.fill_body().await?;
            }
            if &self.pending()[..2] != b"\r\n" {
                return Err(LeanError::Malformed(
                    "a chunk does not end with CRLF".into(),
                ));
            }
            self.start += 2;
        }
    }

    /// The trailer lines after the last chunk, up to the empty line.
    async fn skip_trailers(&mut self) -> Result<(), LeanError> {
        let mut seen = 0usize;
        loop {
            match memchr::memchr(b'\n', self.pending()) {
                Some(at) => {
                    let line = &self.pending()[..at];
                    let empty = line.is_empty() || line == b"\r";
                    self.start += at + 1;
                    seen += at + 1;
                    if empty {
                        return Ok(());
                    }
                }
                None if seen + self.pending().len() > MAX_HEAD => {
                    return Err(LeanError::Malformed(
                        "the trailers are larger than 400 KiB".into(),
                    ));
                }
                None => self.fill_body().await?,
            }
        }
    }

    /// [`Connection::fill`] where the end of the stream cuts a body short.
    async fn fill_body(&mut self) -> Result<(), LeanError> {
        match self.fill().await {
            Ok(0) => Err(LeanError::Closed { in_body: true }),
            Ok(_) => Ok(()),
            Err(err) => Err(LeanError::Io(err)),
        }
    }
}

/// The head's status, headers (when kept) and framing.
fn head_of(response: &httparse::Response<'_, '_>, reading: Reading) -> Result<Head, LeanError> {
    let malformed = |what: &str| LeanError::Malformed(what.to_string());
    let status = response.code.ok_or_else(|| malformed("no status code"))?;
    let http_11 = response.version == Some(1);
    let mut headers = HeaderMap::with_capacity(if reading.keep_headers {
        response.headers.len()
    } else {
        0
    });
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = !http_11;
    for header in response.headers.iter() {
        // httparse has checked the name is a token and the value holds no
        // control character but tab: what the map's types would check.
        if reading.keep_headers {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| malformed("invalid header name"))?;
            let value = HeaderValue::from_bytes(header.value)
                .map_err(|_| malformed("invalid header value"))?;
            headers.append(name, value);
        }
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Repeated, or a list, the lengths must agree (RFC 9110, 8.6).
            for part in header.value.split(|&b| b == b',') {
                let len = parse_length(part).ok_or_else(|| malformed("invalid content-length"))?;
                if length.is_some_and(|known| known != len) {
                    return Err(malformed("content-length values disagree"));
                }
                length = Some(len);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding says whether the body is chunked.
            let last = header.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http_11 {
                    close = false;
                }
            }
        }
    }
    let no_body =
        reading.head_only || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = match (no_body, chunked, length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        (false, Some(false), _) => Framing::UntilClose,
        (false, None, Some(len)) => Framing::Length(len),
        (false, None, None) => Framing::UntilClose,
    };
    // A length beside a transfer coding may be a smuggling attempt: the
    // coding wins (RFC 9112, 6.3) and the connection is not used again.
    let keep_alive = !close
        && status != 101
        && framing != Framing::UntilClose
        && !(chunked.is_some() && length.is_some());
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive,
    })
}

/// A content-length value: ASCII digits only, optional spaces around.
fn parse_length(text: &[u8]) -> Option<u64> {
    let digits = text.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "h1_response_tests.rs"]
mod tests;
