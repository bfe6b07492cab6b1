//! Fixed-output downloads, as in Nix: the bytes are whatever a mirror serves, accepted only when
//! their SHA-256 is the one pinned beforehand.
//!
//! [`Fetcher::fetch`] tries each mirror URL in turn, streams the body into a temporary file in a
//! directory the caller names (the store's temp dir, so that the caller can rename it into place)
//! while hashing it, and hands the file back only when the hash matches. Transient failures
//! (connection refused or reset, timeouts, HTTP 5xx/408/429, a body cut short) are retried a
//! bounded number of times with a short backoff; anything else (HTTP 404/403, a hash mismatch)
//! moves on to the next mirror at once. A local I/O error (the temp dir) stops everything.
//!
//! The HTTP client is reqwest's blocking one over rustls with the ring crypto provider (no
//! OpenSSL), the platform's root certificates, HTTP/1.1 only, proxy environment variables
//! honoured, and no content decoding: no `Accept-Encoding` is sent and a `Content-Encoding` is
//! ignored, so a `.tar.gz` is hashed and stored exactly as published.
//!
//! Nothing here prints: progress goes through [`FetchProgress`], errors are [`FetchError`] values
//! whose messages name the URL (and both hashes, for a mismatch). A caller that knows where a
//! download was asked for (a file and line) adds it with [`FetchError::at`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

/// A SHA-256 digest.
pub type Sha256Hash = [u8; 32];

/// How downloads behave. [`Default`] suits real mirrors; tests shorten everything.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Longest wait for a TCP (and TLS) connection to be set up.
    pub connect_timeout: Duration,
    /// Longest wait for the response headers, and then for each further piece of the body: a
    /// download that keeps moving may take any time, one that stalls this long fails. It also
    /// bounds the connection set-up when shorter than `connect_timeout`.
    pub read_timeout: Duration,
    /// How many times a transient failure is retried on the same URL (so each URL is tried at
    /// most `retries + 1` times).
    pub retries: u32,
    /// Pause before the first retry; it doubles for each retry after that.
    pub backoff: Duration,
    /// Whether `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy` (and their upper-case
    /// forms) are honoured.
    pub proxy_from_env: bool,
    /// The `User-Agent` header sent.
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            retries: 2,
            backoff: Duration::from_millis(500),
            proxy_from_env: true,
            user_agent: concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Told how a download goes, e.g. to draw a progress bar. Each attempt (a retry, the next mirror)
/// is one `start`, any number of `advance`s and one `finish`, whether it succeeded or not.
pub trait FetchProgress {
    /// The response headers arrived; `total` is the Content-Length when the server gave one.
    fn start(&self, url: &str, total: Option<u64>);
    /// `bytes` more bytes of the body arrived.
    fn advance(&self, bytes: u64);
    /// The attempt ended.
    fn finish(&self);
}

/// A [`FetchProgress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl FetchProgress for NoProgress {
    fn start(&self, _url: &str, _total: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// A verified download: a temporary file (deleted when dropped, unless persisted) whose content
/// has the expected hash.
#[derive(Debug)]
pub struct Fetched {
    pub file: NamedTempFile,
    /// The mirror URL it came from (as given, before any redirect).
    pub url: String,
    pub sha256: Sha256Hash,
    pub size: u64,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The body arrived whole but its hash is not the pinned one.
    #[error(
        "hash mismatch in fixed-output download of {url}:\n  specified: sha256:{}\n  got:       sha256:{}",
        to_hex(specified),
        to_hex(got)
    )]
    HashMismatch {
        url: String,
        specified: Sha256Hash,
        got: Sha256Hash,
    },
    /// No hash was pinned: the body was downloaded and hashed (and then deleted) so that the
    /// caller can show the pin to write down.
    #[error(
        "no hash pinned for fixed-output download of {url}:\n  got:       sha256:{}",
        to_hex(got)
    )]
    Unpinned {
        url: String,
        got: Sha256Hash,
        size: u64,
    },
    /// The server answered with a status other than 2xx (after following redirects).
    #[error("download of {url} failed: HTTP {}", status_text(*status))]
    Http { url: String, status: u16 },
    /// No connection could be made (refused, unreachable, DNS, TLS).
    #[error("cannot connect for {url}: {message}")]
    Connect { url: String, message: String },
    /// The connection, or the server, stalled longer than the timeout.
    #[error("download of {url} timed out")]
    Timeout { url: String },
    /// The connection ended before the Content-Length announced had arrived.
    #[error("download of {url} was cut short: got {got_len} of {expected_len} bytes")]
    Truncated {
        url: String,
        expected_len: u64,
        got_len: u64,
    },
    /// Another transfer failure (connection reset, a malformed response, ...).
    #[error("download of {url} failed: {message}")]
    Transfer { url: String, message: String },
    /// The request could not be made at all (a malformed URL, too many redirects, ...).
    #[error("cannot download {url}: {message}")]
    Request { url: String, message: String },
    /// Writing or reading a local file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The list of URLs was empty.
    #[error("no URL to download from")]
    NoUrls,
    /// Every mirror failed; one error for each, in the order tried. (With a single URL its own
    /// error is returned instead.)
    #[error("every mirror failed:{}", list(.0))]
    AllMirrorsFailed(Vec<FetchError>),
    /// A hash written down (a pin) is not 64 hex digits.
    #[error("invalid sha256 {text:?}: {reason}")]
    BadHash { text: String, reason: String },
    /// An error with where the download was asked for (e.g. `recipes/seed.toml:12`).
    #[error("{origin}: {error}")]
    At {
        origin: String,
        error: Box<FetchError>,
    },
}

impl FetchError {
    /// Prefixes the message with where the download was asked for, e.g. a recipe's file:line.
    pub fn at(self, origin: impl Into<String>) -> FetchError {
        FetchError::At {
            origin: origin.into(),
            error: Box::new(self),
        }
    }

    /// The error without any [`FetchError::At`] wrapping.
    pub fn root(&self) -> &FetchError {
        match self {
            FetchError::At { error, .. } => error.root(),
            e => e,
        }
    }

    /// Whether trying the same URL again may help.
    pub fn is_transient(&self) -> bool {
        match self.root() {
            FetchError::Connect { .. }
            | FetchError::Timeout { .. }
            | FetchError::Truncated { .. }
            | FetchError::Transfer { .. } => true,
            FetchError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }
}

fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// Each error on its own line, continuation lines indented under it.
fn list(errors: &[FetchError]) -> String {
    let mut out = String::new();
    for e in errors {
        let text = e.to_string();
        let mut lines = text.lines();
        out.push_str("\n  - ");
        out.push_str(lines.next().unwrap_or_default());
        for line in lines {
            out.push_str("\n    ");
            out.push_str(line);
        }
    }
    out
}

/// Downloads fixed-output files. Holds one HTTP client (and its connection pool); reuse it.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::blocking::Client,
    options: FetchOptions,
}

impl Fetcher {
    /// Sets up the HTTP client. If no process-wide rustls crypto provider is installed yet, this
    /// installs ring's (reqwest is built without one of its own).
    pub fn new(options: FetchOptions) -> Result<Fetcher, FetchError> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another thread installing one is fine: either provider will do.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.read_timeout)
            .user_agent(options.user_agent.as_str());
        if !options.proxy_from_env {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        Ok(Fetcher { client, options })
    }

    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Downloads the first of `urls` that works into a temporary file in `temp_dir`, and returns
    /// it if its SHA-256 is `expected`. With `expected` `None`, the first complete download ends
    /// in [`FetchError::Unpinned`] carrying its hash. Nothing is left in `temp_dir` on failure.
    pub fn fetch<S: AsRef<str>>(
        &self,
        urls: &[S],
        expected: Option<&Sha256Hash>,
        temp_dir: &Path,
        progress: &dyn FetchProgress,
    ) -> Result<Fetched, FetchError> {
        let mut failures = Vec::new();
        for url in urls {
            let url = url.as_ref();
            let mut retry = 0;
            loop {
                match self.attempt(url, expected, temp_dir, progress) {
                    Ok(fetched) => return Ok(fetched),
                    Err(e @ (FetchError::Unpinned { .. } | FetchError::Io { .. })) => {
                        return Err(e);
                    }
                    Err(e) if e.is_transient() && retry < self.options.retries => {
                        std::thread::sleep(self.backoff(retry));
                        retry += 1;
                    }
                    Err(e) => {
                        failures.push(e);
                        break;
                    }
                }
            }
        }
        match failures.len() {
            0 => Err(FetchError::NoUrls),
            1 => Err(failures.remove(0)),
            _ => Err(FetchError::AllMirrorsFailed(failures)),
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        self.options.backoff.saturating_mul(1 << retry.min(6))
    }

    /// One GET of one URL.
    fn attempt(
        &self,
        url: &str,
        expected: Option<&Sha256Hash>,
        temp_dir: &Path,
        progress: &dyn FetchProgress,
    ) -> Result<Fetched, FetchError> {
        // file:///path: a local mirror (a shared disk, a copy carried across an air gap), checked the same way.
        let (mut response, total): (Box<dyn Read>, Option<u64>) =
            if let Some(path) = url.strip_prefix("file://") {
                let file = std::fs::File::open(path).map_err(|e| FetchError::Request {
                    url: url.to_string(),
                    message: e.to_string(),
                })?;
                let total = file.metadata().ok().map(|m| m.len());
                (Box::new(file), total)
            } else {
                let response = self
                    .client
                    .get(url)
                    .send()
                    .map_err(|e| send_error(url, &e))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(FetchError::Http {
                        url: url.to_string(),
                        status: status.as_u16(),
                    });
                }
                let total = response.content_length();
                (Box::new(response), total)
            };
        let mut file = tempfile::Builder::new()
            .prefix(".fetch-")
            .suffix(".tmp")
            .tempfile_in(temp_dir)
            .map_err(|source| FetchError::Io {
                path: temp_dir.to_path_buf(),
                source,
            })?;
        progress.start(url, total);
        let copied = copy_hashing(&mut response, &mut file, progress);
        progress.finish();
        let (sha256, size) = match copied {
            Ok(done) => done,
            Err(CopyError::Write(source)) => {
                return Err(FetchError::Io {
                    path: file.path().to_path_buf(),
                    source,
                });
            }
            Err(CopyError::Read(e, got_len)) => return Err(read_error(url, e, total, got_len)),
        };
        if let Some(expected_len) = total.filter(|&n| size < n) {
            return Err(FetchError::Truncated {
                url: url.to_string(),
                expected_len,
                got_len: size,
            });
        }
        match expected {
            None => Err(FetchError::Unpinned {
                url: url.to_string(),
                got: sha256,
                size,
            }),
            Some(specified) if *specified != sha256 => Err(FetchError::HashMismatch {
                url: url.to_string(),
                specified: *specified,
                got: sha256,
            }),
            Some(_) => Ok(Fetched {
                file,
                url: url.to_string(),
                sha256,
                size,
            }),
        }
    }
}

enum CopyError {
    /// Reading the body failed after this many bytes.
    Read(io::Error, u64),
    Write(io::Error),
}

fn copy_hashing(
    from: &mut impl Read,
    to: &mut impl Write,
    progress: &dyn FetchProgress,
) -> Result<(Sha256Hash, u64), CopyError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e, size)),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        size += n as u64;
        progress.advance(n as u64);
    }
    to.flush().map_err(CopyError::Write)?;
    Ok((hasher.finalize().into(), size))
}

/// A failure before the response headers arrived.
fn send_error(url: &str, e: &reqwest::Error) -> FetchError {
    let url = url.to_string();
    if e.is_timeout() {
        FetchError::Timeout { url }
    } else if e.is_connect() {
        FetchError::Connect {
            url,
            message: error_chain(e),
        }
    } else if e.is_builder() || e.is_redirect() {
        FetchError::Request {
            url,
            message: error_chain(e),
        }
    } else {
        FetchError::Transfer {
            url,
            message: error_chain(e),
        }
    }
}

/// A failure while reading the body, after `got_len` bytes of an announced `total`.
fn read_error(url: &str, e: io::Error, total: Option<u64>, got_len: u64) -> FetchError {
    let url = url.to_string();
    let timed_out = match e.get_ref().and_then(|r| r.downcast_ref::<reqwest::Error>()) {
        Some(inner) => inner.is_timeout(),
        None => e.kind() == io::ErrorKind::TimedOut,
    };
    if timed_out {
        return FetchError::Timeout { url };
    }
    match total {
        Some(expected_len) if got_len < expected_len => FetchError::Truncated {
            url,
            expected_len,
            got_len,
        },
        _ => FetchError::Transfer {
            url,
            message: error_chain(&e),
        },
    }
}

/// The messages of an error's sources, innermost last; the outermost reqwest one is skipped when
/// it has sources, as it only repeats the URL.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = e.source();
    if next.is_none() {
        return e.to_string();
    }
    while let Some(err) = next {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The SHA-256 of a file's content (for importing a file by hash).
pub fn sha256_file(path: &Path) -> Result<Sha256Hash, FetchError> {
    let io_error = |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    Ok(hasher.finalize().into())
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Reads a pinned SHA-256: 64 hex digits (either case), optionally after `sha256:`.
pub fn parse_sha256(text: &str) -> Result<Sha256Hash, FetchError> {
    let bad = |reason: String| FetchError::BadHash {
        text: text.to_string(),
        reason,
    };
    let digits = text.strip_prefix("sha256:").unwrap_or(text);
    if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "{c:?} at offset {i} is not a hex digit (expected 64 hex digits)"
        )));
    }
    if digits.len() != 64 {
        return Err(bad(format!(
            "expected 64 hex digits, found {}",
            digits.len()
        )));
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
        *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(out)
}

/// Like [`parse_sha256`], but an empty (or blank) pin is `None`: not pinned yet.
pub fn parse_pin(text: &str) -> Result<Option<Sha256Hash>, FetchError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse_sha256(text).map(Some)
    }
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.to_ascii_lowercase() - b'a' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Instant;

    /// What the test server does with one connection (one request each: it always closes).
    enum Reply {
        /// A whole response.
        Full {
            status: &'static str,
            headers: Vec<(&'static str, &'static str)>,
            body: Vec<u8>,
        },
        /// 200 with `Content-Length: declared`, then `body` (shorter), then close.
        Cut { declared: usize, body: Vec<u8> },
        /// 200 with `Content-Length: declared` and `body` (shorter), then silence until the
        /// client hangs up.
        Stall { declared: usize, body: Vec<u8> },
        /// Reads the request, never answers, waits for the client to hang up.
        Silent,
    }

    fn ok(body: &[u8]) -> Reply {
        Reply::Full {
            status: "200 OK",
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    fn status(status: &'static str) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: b"no".to_vec(),
        }
    }

    /// A one-thread HTTP/1.1 server on 127.0.0.1 that answers connections with a script, one
    /// reply each, and records each request head. Its thread ends when the script is done, when
    /// the server is dropped, or after a few seconds, whichever is first.
    struct Server {
        port: u16,
        heads: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    const SERVER_LIFETIME: Duration = Duration::from_secs(5);

    impl Server {
        fn start(script: Vec<Reply>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            listener.set_nonblocking(true).expect("nonblocking");
            let port = listener.local_addr().expect("local addr").port();
            let heads = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let heads = Arc::clone(&heads);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || serve(listener, script, &heads, &stop))
            };
            Server {
                port,
                heads,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        fn heads(&self) -> Vec<String> {
            self.heads.lock().expect("heads").clone()
        }

        fn requests(&self) -> usize {
            self.heads.lock().expect("heads").len()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn serve(
        listener: TcpListener,
        script: Vec<Reply>,
        heads: &Mutex<Vec<String>>,
        stop: &AtomicBool,
    ) {
        let deadline = Instant::now() + SERVER_LIFETIME;
        let over = || stop.load(Ordering::SeqCst) || Instant::now() >= deadline;
        for reply in script {
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && !over() => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => return,
                }
            };
            if stream.set_nonblocking(false).is_err()
                || stream
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .is_err()
                || stream
                    .set_write_timeout(Some(Duration::from_secs(2)))
                    .is_err()
            {
                return;
            }
            let Some(head) = read_head(&mut stream, &over) else {
                continue;
            };
            heads.lock().expect("heads").push(head);
            // Errors writing mean the client went away: on to the next connection.
            let _ = answer(&mut stream, reply, &over);
        }
    }

    fn read_head(stream: &mut TcpStream, over: &dyn Fn() -> bool) -> Option<String> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && !over() => {}
                Err(_) => return None,
            }
        }
        Some(String::from_utf8_lossy(&head).into_owned())
    }

    /// Waits until the client closes the connection (or the server's time is up).
    fn wait_for_hang_up(stream: &mut TcpStream, over: &dyn Fn() -> bool) {
        let mut buf = [0u8; 256];
        while !over() {
            match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }

    fn answer(stream: &mut TcpStream, reply: Reply, over: &dyn Fn() -> bool) -> io::Result<()> {
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut out = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                stream.write_all(out.as_bytes())?;
                stream.write_all(&body)?;
                stream.flush()
            }
            Reply::Cut { declared, body } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(head.as_bytes())?;
                stream.write_all(&body)?;
                stream.flush()
            }
            Reply::Stall { declared, body } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(head.as_bytes())?;
                stream.write_all(&body)?;
                stream.flush()?;
                wait_for_hang_up(stream, over);
                Ok(())
            }
            Reply::Silent => {
                wait_for_hang_up(stream, over);
                Ok(())
            }
        }
    }

    fn options() -> FetchOptions {
        FetchOptions {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(10),
            proxy_from_env: false,
            user_agent: "fetch-test".to_string(),
        }
    }

    fn fetcher(options: FetchOptions) -> Fetcher {
        Fetcher::new(options).expect("client")
    }

    fn sha(bytes: &[u8]) -> Sha256Hash {
        Sha256::digest(bytes).into()
    }

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).expect("read temp dir").count()
    }

    /// Records what a download reported.
    #[derive(Default)]
    struct Recorder {
        events: RefCell<Vec<String>>,
        bytes: RefCell<u64>,
    }

    impl FetchProgress for Recorder {
        fn start(&self, url: &str, total: Option<u64>) {
            self.events
                .borrow_mut()
                .push(format!("start {url} {total:?}"));
        }
        fn advance(&self, bytes: u64) {
            *self.bytes.borrow_mut() += bytes;
        }
        fn finish(&self) {
            self.events.borrow_mut().push("finish".to_string());
        }
    }

    #[test]
    fn downloads_when_the_hash_matches() {
        let body = b"hello, fixed output\n".repeat(5000);
        let server = Server::start(vec![ok(&body)]);
        let dir = temp_dir();
        let progress = Recorder::default();
        let url = server.url("/a.tar.gz");
        let fetched = fetcher(options())
            .fetch(&[&url], Some(&sha(&body)), dir.path(), &progress)
            .expect("fetch");
        assert_eq!(std::fs::read(fetched.file.path()).expect("read"), body);
        assert_eq!(fetched.sha256, sha(&body));
        assert_eq!(fetched.size, body.len() as u64);
        assert_eq!(fetched.url, url);
        assert_eq!(fetched.file.path().parent(), Some(dir.path()));
        assert_eq!(
            *progress.events.borrow(),
            [
                format!("start {url} Some({})", body.len()),
                "finish".to_string()
            ]
        );
        assert_eq!(*progress.bytes.borrow(), body.len() as u64);
        let heads = server.heads();
        assert_eq!(heads.len(), 1);
        let head = heads[0].to_ascii_lowercase();
        assert!(head.starts_with("get /a.tar.gz http/1.1\r\n"), "{head}");
        assert!(!head.contains("accept-encoding"), "{head}");
        assert!(head.contains("user-agent: fetch-test\r\n"), "{head}");
        drop(fetched);
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn wrong_hash_shows_both_hashes_and_leaves_nothing() {
        let server = Server::start(vec![ok(b"actual")]);
        let dir = temp_dir();
        let url = server.url("/f");
        let err = fetcher(options())
            .fetch(&[&url], Some(&sha(b"expected")), dir.path(), &NoProgress)
            .expect_err("mismatch");
        assert!(
            matches!(&err, FetchError::HashMismatch { url: u, specified, got }
                if *u == url && *specified == sha(b"expected") && *got == sha(b"actual")),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "hash mismatch in fixed-output download of {url}:\n  specified: sha256:{}\n  got:       sha256:{}",
                to_hex(&sha(b"expected")),
                to_hex(&sha(b"actual"))
            )
        );
        assert_eq!(server.requests(), 1, "a mismatch is not retried");
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn not_found_is_not_retried() {
        let server = Server::start(vec![status("404 Not Found"), status("404 Not Found")]);
        let dir = temp_dir();
        let url = server.url("/missing");
        let err = fetcher(options())
            .fetch(&[&url], Some(&sha(b"x")), dir.path(), &NoProgress)
            .expect_err("404");
        assert!(
            matches!(&err, FetchError::Http { status: 404, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("download of {url} failed: HTTP 404 Not Found")
        );
        assert_eq!(server.requests(), 1);
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn forbidden_is_not_retried() {
        let scratch = temp_dir();
        let server = Server::start(vec![status("403 Forbidden"), status("403 Forbidden")]);
        let err = fetcher(options())
            .fetch(
                &[server.url("/f")],
                Some(&sha(b"x")),
                scratch.path(),
                &NoProgress,
            )
            .expect_err("403");
        assert!(
            matches!(err, FetchError::Http { status: 403, .. }),
            "{err:?}"
        );
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn next_mirror_after_not_found() {
        let scratch = temp_dir();
        let first = Server::start(vec![status("404 Not Found")]);
        let second = Server::start(vec![ok(b"content")]);
        let urls = [first.url("/f"), second.url("/f")];
        let fetched = fetcher(options())
            .fetch(&urls, Some(&sha(b"content")), scratch.path(), &NoProgress)
            .expect("second mirror");
        assert_eq!(fetched.url, urls[1]);
        assert_eq!(
            std::fs::read(fetched.file.path()).expect("read"),
            b"content"
        );
        assert_eq!((first.requests(), second.requests()), (1, 1));
    }

    #[test]
    fn next_mirror_after_a_mismatch_and_every_failure_listed() {
        let scratch = temp_dir();
        let first = Server::start(vec![ok(b"tampered")]);
        let second = Server::start(vec![ok(b"content")]);
        let urls = [first.url("/f"), second.url("/f")];
        let fetched = fetcher(options())
            .fetch(&urls, Some(&sha(b"content")), scratch.path(), &NoProgress)
            .expect("second mirror");
        assert_eq!(fetched.url, urls[1]);
        assert_eq!(entries(scratch.path()), 1, "the tampered download is gone");

        let first = Server::start(vec![status("404 Not Found")]);
        let second = Server::start(vec![ok(b"tampered")]);
        let urls = [first.url("/f"), second.url("/f")];
        let dir = temp_dir();
        let err = fetcher(options())
            .fetch(&urls, Some(&sha(b"content")), dir.path(), &NoProgress)
            .expect_err("both fail");
        let FetchError::AllMirrorsFailed(failures) = &err else {
            panic!("{err:?}");
        };
        assert!(matches!(failures[0], FetchError::Http { status: 404, .. }));
        assert!(matches!(failures[1], FetchError::HashMismatch { .. }));
        assert_eq!(failures.len(), 2);
        assert_eq!(
            err.to_string(),
            format!(
                "every mirror failed:\n  - download of {} failed: HTTP 404 Not Found\n  - hash mismatch in fixed-output download of {}:\n      specified: sha256:{}\n      got:       sha256:{}",
                urls[0],
                urls[1],
                to_hex(&sha(b"content")),
                to_hex(&sha(b"tampered"))
            )
        );
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn body_cut_short_is_truncated_after_bounded_retries() {
        let cut = || Reply::Cut {
            declared: 100,
            body: vec![7; 10],
        };
        let server = Server::start(vec![cut(), cut(), cut(), cut()]);
        let dir = temp_dir();
        let url = server.url("/f");
        let err = fetcher(options())
            .fetch(&[&url], Some(&sha(b"x")), dir.path(), &NoProgress)
            .expect_err("truncated");
        assert!(
            matches!(&err, FetchError::Truncated { url: u, expected_len: 100, got_len: 10 } if *u == url),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("download of {url} was cut short: got 10 of 100 bytes")
        );
        assert_eq!(server.requests(), 3, "first try and 2 retries");
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn silent_server_times_out() {
        let scratch = temp_dir();
        let server = Server::start(vec![Reply::Silent, Reply::Silent, Reply::Silent]);
        let options = FetchOptions {
            read_timeout: Duration::from_millis(300),
            retries: 1,
            ..options()
        };
        let url = server.url("/f");
        let started = Instant::now();
        let err = fetcher(options)
            .fetch(&[&url], Some(&sha(b"x")), scratch.path(), &NoProgress)
            .expect_err("timeout");
        let took = started.elapsed();
        assert!(
            matches!(&err, FetchError::Timeout { url: u } if *u == url),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("download of {url} timed out"));
        assert_eq!(server.requests(), 2);
        assert!(took >= Duration::from_millis(600), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn stalled_body_times_out() {
        let server = Server::start(vec![Reply::Stall {
            declared: 100,
            body: vec![1; 10],
        }]);
        let options = FetchOptions {
            read_timeout: Duration::from_millis(300),
            retries: 0,
            ..options()
        };
        let dir = temp_dir();
        let started = Instant::now();
        let err = fetcher(options)
            .fetch(
                &[server.url("/f")],
                Some(&sha(b"x")),
                dir.path(),
                &NoProgress,
            )
            .expect_err("timeout");
        assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn connection_refused_is_a_connect_error() {
        let scratch = temp_dir();
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let url = format!("http://127.0.0.1:{port}/f");
        let options = FetchOptions {
            retries: 1,
            ..options()
        };
        let err = fetcher(options)
            .fetch(&[&url], Some(&sha(b"x")), scratch.path(), &NoProgress)
            .expect_err("refused");
        assert!(
            matches!(&err, FetchError::Connect { url: u, .. } if *u == url),
            "{err:?}"
        );
        assert!(err.is_transient());
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot connect for {url}: ")),
            "{text}"
        );
        assert!(text.to_ascii_lowercase().contains("refused"), "{text}");
    }

    #[test]
    fn server_error_is_retried() {
        let scratch = temp_dir();
        let server = Server::start(vec![
            status("500 Internal Server Error"),
            status("503 Service Unavailable"),
            ok(b"content"),
        ]);
        let progress = Recorder::default();
        let fetched = fetcher(options())
            .fetch(
                &[server.url("/f")],
                Some(&sha(b"content")),
                scratch.path(),
                &progress,
            )
            .expect("third try");
        assert_eq!(
            std::fs::read(fetched.file.path()).expect("read"),
            b"content"
        );
        assert_eq!(server.requests(), 3);
        // Failed statuses never start a body.
        assert_eq!(progress.events.borrow().len(), 2);
    }

    #[test]
    fn content_encoding_is_not_decoded() {
        let scratch = temp_dir();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"plain text inside").expect("gzip");
        let raw = gz.finish().expect("gzip");
        let server = Server::start(vec![Reply::Full {
            status: "200 OK",
            headers: vec![
                ("Content-Encoding", "gzip"),
                ("Content-Type", "application/gzip"),
            ],
            body: raw.clone(),
        }]);
        let fetched = fetcher(options())
            .fetch(
                &[server.url("/f.tar.gz")],
                Some(&sha(&raw)),
                scratch.path(),
                &NoProgress,
            )
            .expect("raw bytes");
        assert_eq!(std::fs::read(fetched.file.path()).expect("read"), raw);
        assert!(
            !server.heads()[0]
                .to_ascii_lowercase()
                .contains("accept-encoding")
        );
    }

    #[test]
    fn unpinned_reports_the_hash_and_keeps_nothing() {
        let server = Server::start(vec![ok(b"new file")]);
        let dir = temp_dir();
        let url = server.url("/f");
        let err = fetcher(options())
            .fetch(&[&url], None, dir.path(), &NoProgress)
            .expect_err("unpinned");
        assert!(
            matches!(&err, FetchError::Unpinned { url: u, got, size: 8 } if *u == url && *got == sha(b"new file")),
            "{err:?}"
        );
        assert!(err.to_string().ends_with(&to_hex(&sha(b"new file"))));
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn origin_prefixes_the_message() {
        let err = FetchError::Http {
            url: "http://127.0.0.1:1/f".to_string(),
            status: 404,
        }
        .at("recipes/seed.toml:12");
        assert_eq!(
            err.to_string(),
            "recipes/seed.toml:12: download of http://127.0.0.1:1/f failed: HTTP 404 Not Found"
        );
        assert!(matches!(err.root(), FetchError::Http { status: 404, .. }));
        assert!(!err.is_transient());
    }

    #[test]
    fn no_urls_and_local_errors() {
        let scratch = temp_dir();
        let urls: [&str; 0] = [];
        let err = fetcher(options())
            .fetch(&urls, None, scratch.path(), &NoProgress)
            .expect_err("no urls");
        assert!(matches!(err, FetchError::NoUrls));

        // A temp dir that does not exist stops at the first mirror.
        let first = Server::start(vec![ok(b"content")]);
        let second = Server::start(vec![ok(b"content")]);
        let dir = temp_dir();
        let missing = dir.path().join("missing");
        let err = fetcher(options())
            .fetch(
                &[first.url("/f"), second.url("/f")],
                Some(&sha(b"content")),
                &missing,
                &NoProgress,
            )
            .expect_err("no temp dir");
        assert!(
            matches!(&err, FetchError::Io { path, .. } if *path == missing),
            "{err:?}"
        );
        assert_eq!(second.requests(), 0);
    }

    #[test]
    fn hashes_files() {
        let dir = temp_dir();
        let path = dir.path().join("f");
        let content = vec![42u8; 200_000];
        std::fs::write(&path, &content).expect("write");
        assert_eq!(sha256_file(&path).expect("hash"), sha(&content));
        // The empty file's well-known hash.
        std::fs::write(&path, b"").expect("write");
        assert_eq!(
            to_hex(&sha256_file(&path).expect("hash")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let err = sha256_file(&dir.path().join("none")).expect_err("missing");
        assert!(matches!(err, FetchError::Io { .. }));
    }

    #[test]
    fn parses_pins() {
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let hash = parse_sha256(hex).expect("upper case");
        assert_eq!(hash, sha(b""));
        assert_eq!(to_hex(&hash), hex.to_ascii_lowercase());
        assert_eq!(
            parse_sha256(&format!("sha256:{}", to_hex(&hash))).expect("prefixed"),
            hash
        );
        assert_eq!(parse_pin("").expect("empty"), None);
        assert_eq!(parse_pin(hex).expect("pin"), Some(hash));

        let err = parse_sha256(&hex[1..]).expect_err("short");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid sha256 {:?}: expected 64 hex digits, found 63",
                &hex[1..]
            )
        );
        let err = parse_sha256(&format!("{}g", &hex[1..])).expect_err("not hex");
        assert!(
            err.to_string()
                .ends_with("'g' at offset 63 is not a hex digit (expected 64 hex digits)"),
            "{err}"
        );
        assert!(parse_sha256(&format!("{hex}00")).is_err());
        assert!(parse_sha256("sha1:00").is_err());
    }
}
