//! A bundle's manifest: the host, every entry's record (path, type, mode, and for a file its size and
//! SHA-256), and the bundle's own size, SHA-256 and BLAKE3 — what `push` and `import` verify against.
//!
//! Text form (canonical; [`Manifest::parse`] accepts nothing else):
//! ```text
//! hardway bundle manifest v1
//! host node-0
//! bundle-size 1234
//! bundle-sha256 <64 hex>
//! bundle-blake3 <64 hex>
//! d 0755 /etc
//! f 0600 <sha256 hex> <size> /etc/x
//! ```

use std::io::{self, Read};

use sha2::Digest;

use super::BundleError;
use super::overlay::validate_host;
use super::record::{self, Records, hex, lines, parse_records, render_line, unhex};

const MANIFEST_MAGIC: &str = "hardway bundle manifest v1";

/// A bundle's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub host: String,
    pub entries: Records,
    pub bundle: BundleDigest,
}

/// The size and hashes of a bundle file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BundleDigest {
    pub size: u64,
    pub sha256: [u8; 32],
    pub blake3: [u8; 32],
}

impl BundleDigest {
    /// Hashes everything `reader` yields, e.g. a bundle file to check against its manifest.
    pub fn of(mut reader: impl Read) -> io::Result<BundleDigest> {
        let mut sha256 = sha2::Sha256::new();
        let mut blake3 = blake3::Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if n == 0 {
                break;
            }
            sha256.update(&buf[..n]);
            blake3.update(&buf[..n]);
            size += n as u64;
        }
        Ok(BundleDigest {
            size,
            sha256: sha256.finalize().into(),
            blake3: *blake3.finalize().as_bytes(),
        })
    }
}

impl Manifest {
    /// The canonical text.
    pub fn render(&self) -> String {
        let mut text = format!(
            "{MANIFEST_MAGIC}\nhost {}\nbundle-size {}\nbundle-sha256 {}\nbundle-blake3 {}\n",
            self.host,
            self.bundle.size,
            hex(&self.bundle.sha256),
            hex(&self.bundle.blake3),
        );
        for (path, r) in &self.entries {
            text.push_str(&render_line(path, r));
            text.push('\n');
        }
        text
    }

    /// Parses the canonical text.
    pub fn parse(text: &str) -> Result<Manifest, BundleError> {
        Manifest::parse_lines(text, false)
    }

    /// The host and bundle digest only (the first five lines): what a lock records, without the entries.
    pub fn parse_head(text: &str) -> Result<Manifest, BundleError> {
        Manifest::parse_lines(text, true)
    }

    fn parse_lines(text: &str, head_only: bool) -> Result<Manifest, BundleError> {
        const WHAT: &str = "bundle manifest";
        let text = if head_only {
            // Five lines and their newlines; the rest is not looked at.
            let end = text
                .match_indices('\n')
                .nth(4)
                .map_or(text.len(), |(i, _)| i + 1);
            &text[..end]
        } else {
            text
        };
        let lines = lines(WHAT, text)?;
        let err = |line: usize, message: String| BundleError::Parse {
            what: WHAT,
            line,
            message,
        };
        if lines.len() < 5 {
            return Err(err(lines.len(), "the manifest is truncated".to_owned()));
        }
        if lines[0].1 != MANIFEST_MAGIC {
            return Err(err(
                1,
                format!("expected {MANIFEST_MAGIC:?}, found {:?}", lines[0].1),
            ));
        }
        let host = record::field(WHAT, lines[1], "host")?;
        validate_host(host)?;
        let size = record::parse_decimal(record::field(WHAT, lines[2], "bundle-size")?)
            .map_err(|m| err(3, m))?;
        let hash = |i: usize, key| {
            unhex::<32>(record::field(WHAT, lines[i], key)?).ok_or_else(|| {
                err(
                    i + 1,
                    format!("expected 64 lowercase hex digits after {key}"),
                )
            })
        };
        let sha256 = hash(3, "bundle-sha256")?;
        let blake3 = hash(4, "bundle-blake3")?;
        Ok(Manifest {
            host: host.to_owned(),
            entries: if head_only {
                Records::new()
            } else {
                parse_records(WHAT, &lines[5..])?
            },
            bundle: BundleDigest {
                size,
                sha256,
                blake3,
            },
        })
    }
}
