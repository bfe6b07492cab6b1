//! Writing a bundle: the overlay's entries as one tar stream in path order, compressed as gzip members;
//! precompressed segments are copied in verbatim between them. The manifest is computed on the way.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use sha2::Digest;

use super::BundleError;
use super::gzip::Member;
use super::manifest::{BundleDigest, Manifest};
use super::overlay::{Entry, EntryKind, Overlay, digest_file};
use super::record::{EntryRecord, FileDigest, RecordKind, Records};
use super::segment::Segment;
use super::tar::{self, MemberType};

const READ_CHUNK: usize = 256 * 1024;

/// Writes `overlay` as a deterministic `.tar.gz` (one gzip member) and returns its manifest.
///
/// Files are read from their sources now; a file whose size changes while it is read, or whose recorded
/// digest does not match, is an error. On error, whatever was written to `out` is to be discarded.
pub fn write_bundle(overlay: &Overlay, out: &mut impl Write) -> Result<Manifest, BundleError> {
    write_bundle_with_segments(overlay, &[], out)
}

/// Writes `overlay` as a `.tar.gz` in which each segment's entries are the segment's precompressed member,
/// copied verbatim; the entries before, between and after segments are compressed as members of their own,
/// and the last member holds the end-of-archive blocks. The uncompressed tar stream is the same as
/// [`write_bundle`]'s.
///
/// Each segment's entries must be in the overlay with the same modes and contents (compared by size and
/// SHA-256: the recorded digest when the overlay has one, else the file is read) and must be a contiguous
/// run of the overlay's entries in path order; no entry may be in two segments.
pub fn write_bundle_with_segments(
    overlay: &Overlay,
    segments: &[&Segment],
    out: &mut impl Write,
) -> Result<Manifest, BundleError> {
    overlay.validate()?;
    let starts = place_segments(overlay, segments)?;
    let mut sink = Sink::Plain(Hashing::new(out));
    let mut scratch = Scratch::new();
    let mut records = Records::new();
    let mut entries = overlay.entries.iter();
    while let Some((path, entry)) = entries.next() {
        if let Some(segment) = starts.get(path.as_str()) {
            sink.plain()
                .and_then(|h| h.write_all(segment.member()))
                .map_err(BundleError::Write)?;
            records.extend(segment.records().iter().map(|(p, r)| (p.clone(), *r)));
            // `place_segments` checked that the segment's entries are exactly the next ones.
            for _ in 1..segment.records().len() {
                entries.next();
            }
            continue;
        }
        let member = sink.member().map_err(BundleError::Write)?;
        let record = emit_entry(member, path, entry, &mut scratch)?;
        records.insert(path.clone(), record);
    }
    let member = sink.member().map_err(BundleError::Write)?;
    member
        .write_all(&tar::END_OF_ARCHIVE)
        .map_err(BundleError::Write)?;
    let hashing = sink.plain().map_err(BundleError::Write)?;
    hashing.flush().map_err(BundleError::Write)?;
    Ok(Manifest {
        host: overlay.host.clone(),
        entries: records,
        bundle: hashing.digest(),
    })
}

/// Writes the uncompressed tar stream of `overlay` (what the bundle decompresses to) and returns the
/// records of its entries.
pub fn write_tar(overlay: &Overlay, out: &mut impl Write) -> Result<Records, BundleError> {
    overlay.validate()?;
    let mut sink = Plain(out);
    let mut scratch = Scratch::new();
    let mut records = Records::new();
    for (path, entry) in &overlay.entries {
        records.insert(
            path.clone(),
            emit_entry(&mut sink, path, entry, &mut scratch)?,
        );
    }
    sink.put(&tar::END_OF_ARCHIVE).map_err(BundleError::Write)?;
    Ok(records)
}

/// Maps the first path of each segment to the segment, after checking the segments against the overlay.
fn place_segments<'a>(
    overlay: &Overlay,
    segments: &[&'a Segment],
) -> Result<BTreeMap<&'a str, &'a Segment>, BundleError> {
    let mut starts = BTreeMap::new();
    let mut covered = BTreeSet::new();
    for &segment in segments {
        let Some(first) = segment.records().keys().next() else {
            return Err(BundleError::Segment {
                reason: "it has no entries",
            });
        };
        let mut run = overlay.entries.range::<String, _>(first..);
        for (path, record) in segment.records() {
            let mismatch = |reason| BundleError::SegmentMismatch {
                path: path.clone(),
                reason,
            };
            match run.next() {
                Some((p, entry)) if p == path => {
                    check_entry(path, entry, record).map_err(mismatch)?
                }
                Some((p, _)) if p < path => {
                    return Err(BundleError::SegmentLayout {
                        path: p.clone(),
                        reason: "this overlay entry lies inside a segment's run, which must be \
                                 contiguous in path order",
                    });
                }
                _ => return Err(mismatch("not in the overlay")),
            }
            if !covered.insert(path.as_str()) {
                return Err(BundleError::SegmentLayout {
                    path: path.clone(),
                    reason: "in two segments",
                });
            }
        }
        starts.insert(first.as_str(), segment);
    }
    Ok(starts)
}

fn check_entry(path: &str, entry: &Entry, record: &EntryRecord) -> Result<(), &'static str> {
    if entry.mode != record.mode {
        return Err("the modes differ");
    }
    match (&entry.kind, &record.kind) {
        (EntryKind::Dir, RecordKind::Dir) => Ok(()),
        (EntryKind::File { source, digest }, RecordKind::File(expected)) => {
            let actual = match digest {
                Some(d) => *d,
                None => {
                    digest_file(path, source).map_err(|_| "the overlay's file cannot be read")?
                }
            };
            if actual == *expected {
                Ok(())
            } else {
                Err("the contents differ (size or SHA-256)")
            }
        }
        _ => Err("a directory in one and a file in the other"),
    }
}

/// Where tar bytes go: a gzip member, or an uncompressed stream.
pub(crate) trait TarSink {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()>;
}

impl<W: Write> TarSink for Member<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }
}

struct Plain<W>(W);

impl<W: Write> TarSink for Plain<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
}

/// Reusable buffers for [`emit_entry`].
pub(crate) struct Scratch {
    header: Vec<u8>,
    data: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            header: Vec::with_capacity(3 * tar::BLOCK),
            data: vec![0; READ_CHUNK],
        }
    }
}

/// Writes one entry's header, data and padding; returns its record.
pub(crate) fn emit_entry(
    sink: &mut impl TarSink,
    path: &str,
    entry: &Entry,
    scratch: &mut Scratch,
) -> Result<EntryRecord, BundleError> {
    scratch.header.clear();
    let kind = match &entry.kind {
        EntryKind::Dir => {
            let name = tar::member_name(path, MemberType::Dir);
            tar::write_header(
                &mut scratch.header,
                path,
                &name,
                MemberType::Dir,
                entry.mode,
                0,
            )?;
            sink.put(&scratch.header).map_err(BundleError::Write)?;
            RecordKind::Dir
        }
        EntryKind::File { source, digest } => {
            let io = |e| BundleError::Source {
                path: path.to_owned(),
                source_path: source.clone(),
                source: e,
            };
            let mut file = std::fs::File::open(source).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            let name = tar::member_name(path, MemberType::File);
            tar::write_header(
                &mut scratch.header,
                path,
                &name,
                MemberType::File,
                entry.mode,
                size,
            )?;
            sink.put(&scratch.header).map_err(BundleError::Write)?;
            let mut hasher = sha2::Sha256::new();
            let mut left = size;
            loop {
                let n = match file.read(&mut scratch.data) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => r.map_err(io)?,
                };
                if n == 0 {
                    break;
                }
                if n as u64 > left {
                    left = u64::MAX; // grew: report below
                    break;
                }
                left -= n as u64;
                let chunk = &scratch.data[..n];
                hasher.update(chunk);
                sink.put(chunk).map_err(BundleError::Write)?;
            }
            if left != 0 {
                return Err(BundleError::SourceChanged {
                    path: path.to_owned(),
                    source_path: source.clone(),
                    expected: size,
                });
            }
            let actual = FileDigest {
                size,
                sha256: hasher.finalize().into(),
            };
            if digest.is_some_and(|d| d != actual) {
                return Err(BundleError::DigestMismatch {
                    path: path.to_owned(),
                    source_path: source.clone(),
                });
            }
            sink.put(&[0; tar::BLOCK][..tar::padding(size)])
                .map_err(BundleError::Write)?;
            RecordKind::File(actual)
        }
    };
    Ok(EntryRecord {
        mode: entry.mode,
        kind,
    })
}

/// The bundle's output: either between members, or inside one.
enum Sink<W: Write> {
    Plain(W),
    Member(Member<W>),
    Failed,
}

impl<W: Write> Sink<W> {
    /// The current gzip member, starting one if needed.
    fn member(&mut self) -> io::Result<&mut Member<W>> {
        match std::mem::replace(self, Sink::Failed) {
            Sink::Plain(w) => *self = Sink::Member(Member::start(w)?),
            other => *self = other,
        }
        match self {
            Sink::Member(m) => Ok(m),
            _ => Err(io::Error::other("an earlier write to the bundle failed")),
        }
    }

    /// The raw output, finishing the current member if there is one.
    fn plain(&mut self) -> io::Result<&mut W> {
        match std::mem::replace(self, Sink::Failed) {
            Sink::Member(m) => *self = Sink::Plain(m.finish()?),
            other => *self = other,
        }
        match self {
            Sink::Plain(w) => Ok(w),
            _ => Err(io::Error::other("an earlier write to the bundle failed")),
        }
    }
}

/// Passes writes through while hashing them (SHA-256 and BLAKE3) and counting bytes.
struct Hashing<'a, W: Write> {
    out: &'a mut W,
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    size: u64,
}

impl<'a, W: Write> Hashing<'a, W> {
    fn new(out: &'a mut W) -> Hashing<'a, W> {
        Hashing {
            out,
            sha256: sha2::Sha256::new(),
            blake3: blake3::Hasher::new(),
            size: 0,
        }
    }

    fn digest(&self) -> BundleDigest {
        BundleDigest {
            size: self.size,
            sha256: self.sha256.clone().finalize().into(),
            blake3: *self.blake3.finalize().as_bytes(),
        }
    }
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sha256.update(&buf[..n]);
        self.blake3.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
