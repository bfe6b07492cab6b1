//! Per-host bundles: a host's rootfs overlay as a deterministic `.tar.gz`, and its manifest.
//!
//! The bundle's bytes depend only on the overlay (paths, modes, file contents), never on the clock, the
//! umask, the source files' own metadata or the order entries were added:
//! - tar: GNU headers written by hand — byte for byte what GNU tar 1.34 writes with `--format=gnu -b 1
//!   --owner=root:0 --group=root:0 --mtime=@0 --no-recursion` (a test rebuilds the stream with GNU tar and
//!   compares) — entries sorted by absolute path (the [`Overlay`]'s `BTreeMap`), member names relative
//!   (`var/lib/kubernetes/ca.pem`, directories `etc/`), every parent directory an explicit entry, uid/gid 0,
//!   uname/gname `root`, mtime [`MTIME`] (0, the epoch), modes as given, names over 100 bytes as GNU
//!   `././@LongLink` records, and the two zero end-of-archive blocks (no padding to a 10 KiB record);
//! - gzip: header `1f 8b 08 00`, mtime 0, XFL 0, OS [`GZIP_OS`] (3, Unix), raw deflate from flate2 =1.1.11
//!   with the pure-Rust miniz_oxide =0.9.1 backend at level [`LEVEL`] (6), both pinned exactly in
//!   Cargo.toml since a new deflate implementation may choose different (equally valid) bytes.
//!
//! A bundle may be several gzip members back to back (RFC 1952 §2.2; GNU tar, gzip and Python's tarfile
//! read it as one stream): [`Segment`]s are runs of entries compressed once and spliced verbatim into many
//! bundles. The tar stream is the same with or without segments; the compressed bytes differ, and are
//! deterministic either way.

mod error;
mod gzip;
mod manifest;
mod overlay;
mod read;
mod record;
mod segment;
mod tar;
mod write;

pub use error::BundleError;
pub use manifest::{BundleDigest, Manifest};
pub use overlay::{Entry, EntryKind, Overlay, digest_file, validate_host};
pub use read::{first_difference, read_bundle, verify_bundle};
pub use record::{EntryRecord, FileDigest, RecordKind, Records, validate_path};
pub use segment::Segment;
pub use write::{write_bundle, write_bundle_with_segments, write_tar};

/// The mtime of every tar member: the epoch.
pub const MTIME: u64 = 0;
/// The gzip header's OS byte: 3 (Unix), as `gzip -n` writes on Linux.
pub const GZIP_OS: u8 = 3;
/// The deflate level.
pub const LEVEL: u32 = 6;
/// The usual mode of a directory added as a parent: 0755.
pub const DIR_MODE: u32 = 0o755;
