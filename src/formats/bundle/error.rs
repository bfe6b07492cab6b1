//! The bundle module's errors: each names the overlay path (or the text line) the user has to fix.

use std::path::PathBuf;

/// Why an overlay, a bundle, a segment or a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("host name {host:?} is not valid: {reason}")]
    Host { host: String, reason: &'static str },
    #[error("overlay path {path:?} is not valid: {reason}")]
    Path { path: String, reason: &'static str },
    #[error(
        "overlay path {path:?} has mode {mode:#o}; only permission bits (at most 0o7777) are allowed"
    )]
    Mode { path: String, mode: u32 },
    #[error("overlay path {path:?} has no entry for its parent directory {parent:?}")]
    MissingParent { path: String, parent: String },
    #[error("overlay path {path:?} collides with {other:?}: {reason}")]
    Collision {
        path: String,
        other: String,
        reason: &'static str,
    },
    #[error("overlay path {path:?} is already a file in the overlay")]
    Duplicate { path: String },
    #[error("overlay path {path:?}: reading {source_path}: {source}")]
    Source {
        path: String,
        source_path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "overlay path {path:?}: {source_path} changed while it was being bundled (expected {expected} bytes)"
    )]
    SourceChanged {
        path: String,
        source_path: PathBuf,
        expected: u64,
    },
    #[error(
        "overlay path {path:?}: {source_path} does not match the recorded size and SHA-256 (store corrupted?)"
    )]
    DigestMismatch { path: String, source_path: PathBuf },
    #[error("overlay path {path:?} is {size} bytes; a tar header holds at most 8 GiB - 1")]
    TooLarge { path: String, size: u64 },
    #[error("segment entry {path:?} does not match the overlay: {reason}")]
    SegmentMismatch { path: String, reason: &'static str },
    #[error("segment entry {path:?}: {reason}")]
    SegmentLayout { path: String, reason: &'static str },
    #[error("segment is not valid: {reason}")]
    Segment { reason: &'static str },
    #[error("{what}, line {line}: {message}")]
    Parse {
        what: &'static str,
        line: usize,
        message: String,
    },
    #[error("writing the bundle: {0}")]
    Write(#[source] std::io::Error),
    #[error("reading the bundle: {0}")]
    Read(#[source] std::io::Error),
    #[error("bundle member {member:?} refused: {reason}")]
    Unsafe {
        member: String,
        reason: &'static str,
    },
    #[error("{path}: {what}")]
    Differs { path: String, what: String },
}
