//! A host's rootfs overlay: absolute target paths → directories and files (read from the store), its
//! validation, and its text listing (`hardway overlay v1`), which the overlay derivation writes next to the
//! files so that later steps can verify content without reading it twice.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::BundleError;
use super::record::{
    self, EntryRecord, FileDigest, RecordKind, Records, lines, parse_records, render_line,
    validate_mode, validate_path,
};

const OVERLAY_MAGIC: &str = "hardway overlay v1";

/// A host's rootfs overlay. The `BTreeMap` fixes the order; every owner is root:root (uid/gid 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    pub host: String,
    pub entries: BTreeMap<String, Entry>,
}

/// One entry: its permission bits (e.g. `0o600`, `0o755`) and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub mode: u32,
    pub kind: EntryKind,
}

/// A directory, or a file whose bytes are read from `source` when bundling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// `digest`, when known (e.g. from a parsed listing), is checked against the bytes read, and lets a
    /// segment be matched against the overlay without reading the file.
    File {
        source: PathBuf,
        digest: Option<FileDigest>,
    },
}

/// Checks a host name: 1 to 253 ASCII letters, digits, `-`, `_` or `.`.
pub fn validate_host(host: &str) -> Result<(), BundleError> {
    let bad = |reason| {
        Err(BundleError::Host {
            host: host.to_owned(),
            reason,
        })
    };
    if host.is_empty() || host.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("only ASCII letters, digits, `-`, `_` and `.` are allowed");
    }
    Ok(())
}

impl Overlay {
    /// An empty overlay for `host`.
    pub fn new(host: &str) -> Result<Overlay, BundleError> {
        validate_host(host)?;
        Ok(Overlay {
            host: host.to_owned(),
            entries: BTreeMap::new(),
        })
    }

    /// Adds a file read from `source`, and any missing parent directories with mode `parents_mode`.
    pub fn add_file(
        &mut self,
        path: &str,
        mode: u32,
        source: impl Into<PathBuf>,
        parents_mode: u32,
    ) -> Result<(), BundleError> {
        self.insert(
            path,
            Entry {
                mode,
                kind: EntryKind::File {
                    source: source.into(),
                    digest: None,
                },
            },
            parents_mode,
        )
    }

    /// Adds a directory with an explicit mode, or sets the mode of one already present (e.g. added as a
    /// parent by [`Overlay::add_file`]), so the result does not depend on the order of calls. Missing
    /// parents get `parents_mode`.
    pub fn add_dir(&mut self, path: &str, mode: u32, parents_mode: u32) -> Result<(), BundleError> {
        self.insert(
            path,
            Entry {
                mode,
                kind: EntryKind::Dir,
            },
            parents_mode,
        )
    }

    fn insert(&mut self, path: &str, entry: Entry, parents_mode: u32) -> Result<(), BundleError> {
        validate_path(path)?;
        validate_mode(path, entry.mode)?;
        let mut ancestors = Vec::new();
        let mut p = path;
        while let Some(parent) = record::parent(p) {
            validate_mode(parent, parents_mode)?;
            match self.entries.get(parent) {
                Some(Entry {
                    kind: EntryKind::File { .. },
                    ..
                }) => {
                    return Err(BundleError::Collision {
                        path: path.to_owned(),
                        other: parent.to_owned(),
                        reason: "its parent is a file",
                    });
                }
                Some(_) => break,
                None => ancestors.push(parent),
            }
            p = parent;
        }
        match (self.entries.get_mut(path), &entry.kind) {
            (None, _) => {}
            (
                Some(
                    existing @ Entry {
                        kind: EntryKind::Dir,
                        ..
                    },
                ),
                EntryKind::Dir,
            ) => {
                existing.mode = entry.mode;
                return Ok(());
            }
            (
                Some(Entry {
                    kind: EntryKind::Dir,
                    ..
                }),
                EntryKind::File { .. },
            ) => {
                return Err(BundleError::Collision {
                    path: path.to_owned(),
                    other: path.to_owned(),
                    reason: "a file cannot replace a directory",
                });
            }
            (Some(_), EntryKind::Dir) => {
                return Err(BundleError::Collision {
                    path: path.to_owned(),
                    other: path.to_owned(),
                    reason: "a directory cannot replace a file",
                });
            }
            (Some(_), EntryKind::File { .. }) => {
                return Err(BundleError::Duplicate {
                    path: path.to_owned(),
                });
            }
        }
        for a in ancestors {
            self.entries.insert(
                a.to_owned(),
                Entry {
                    mode: parents_mode,
                    kind: EntryKind::Dir,
                },
            );
        }
        self.entries.insert(path.to_owned(), entry);
        Ok(())
    }

    /// Checks an overlay however it was built: a valid host, absolute normalised paths, permission-bit
    /// modes, and every parent present as an explicit directory (so no file has children).
    pub fn validate(&self) -> Result<(), BundleError> {
        validate_host(&self.host)?;
        for (path, entry) in &self.entries {
            validate_path(path)?;
            validate_mode(path, entry.mode)?;
            if let Some(parent) = record::parent(path) {
                match self.entries.get(parent) {
                    None => {
                        return Err(BundleError::MissingParent {
                            path: path.clone(),
                            parent: parent.to_owned(),
                        });
                    }
                    Some(Entry {
                        kind: EntryKind::File { .. },
                        ..
                    }) => {
                        return Err(BundleError::Collision {
                            path: path.clone(),
                            other: parent.to_owned(),
                            reason: "its parent is a file",
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Every entry's record, reading and hashing the files whose digest is not already known.
    pub fn records(&self) -> Result<Records, BundleError> {
        self.validate()?;
        let mut records = Records::new();
        for (path, entry) in &self.entries {
            let kind = match &entry.kind {
                EntryKind::Dir => RecordKind::Dir,
                EntryKind::File {
                    digest: Some(d), ..
                } => RecordKind::File(*d),
                EntryKind::File {
                    source,
                    digest: None,
                } => RecordKind::File(digest_file(path, source)?),
            };
            records.insert(
                path.clone(),
                EntryRecord {
                    mode: entry.mode,
                    kind,
                },
            );
        }
        Ok(records)
    }

    /// Fills in every missing file digest by reading the file.
    pub fn fill_digests(&mut self) -> Result<(), BundleError> {
        for (path, entry) in &mut self.entries {
            if let EntryKind::File {
                source,
                digest: digest @ None,
            } = &mut entry.kind
            {
                *digest = Some(digest_file(path, source)?);
            }
        }
        Ok(())
    }

    /// The overlay's text listing: `hardway overlay v1`, `host <name>`, then one line per entry in path
    /// order (`d 0755 /etc`, `f 0600 <sha256> <size> /etc/x`). Files without a known digest are read and
    /// hashed.
    pub fn render(&self) -> Result<String, BundleError> {
        let records = self.records()?;
        let mut text = format!("{OVERLAY_MAGIC}\nhost {}\n", self.host);
        for (path, r) in &records {
            text.push_str(&render_line(path, r));
            text.push('\n');
        }
        Ok(text)
    }

    /// Parses a listing written by [`Overlay::render`]. Each file's source is `root` joined with its target
    /// path (without the leading `/`), and its digest is the recorded one, checked when bundling.
    pub fn parse(text: &str, root: &Path) -> Result<Overlay, BundleError> {
        const WHAT: &str = "overlay listing";
        let lines = lines(WHAT, text)?;
        let header = |i: usize| {
            lines.get(i).copied().ok_or(BundleError::Parse {
                what: WHAT,
                line: i + 1,
                message: "the listing is truncated".to_owned(),
            })
        };
        let (n, magic) = header(0)?;
        if magic != OVERLAY_MAGIC {
            return Err(BundleError::Parse {
                what: WHAT,
                line: n,
                message: format!("expected {OVERLAY_MAGIC:?}, found {magic:?}"),
            });
        }
        let host = record::field(WHAT, header(1)?, "host")?;
        validate_host(host)?;
        let records = parse_records(WHAT, &lines[2..])?;
        let entries = records
            .into_iter()
            .map(|(path, r)| {
                let kind = match r.kind {
                    RecordKind::Dir => EntryKind::Dir,
                    RecordKind::File(d) => EntryKind::File {
                        source: root.join(&path[1..]),
                        digest: Some(d),
                    },
                };
                (path, Entry { mode: r.mode, kind })
            })
            .collect();
        let overlay = Overlay {
            host: host.to_owned(),
            entries,
        };
        overlay.validate()?;
        Ok(overlay)
    }
}

/// Reads `source` and returns its size and SHA-256.
pub fn digest_file(path: &str, source: &Path) -> Result<FileDigest, BundleError> {
    let io = |e| BundleError::Source {
        path: path.to_owned(),
        source_path: source.to_path_buf(),
        source: e,
    };
    let mut file = std::fs::File::open(source).map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.map_err(io)?,
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigest {
        size,
        sha256: hasher.finalize().into(),
    })
}
