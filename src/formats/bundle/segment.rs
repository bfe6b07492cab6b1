//! Segments: a run of tar entries compressed once as a standalone gzip member (headers, data and padding,
//! no end-of-archive), to be cached in the store and spliced verbatim into many hosts' bundles, so that a
//! large file shared by hosts (the etcd binaries) is compressed once rather than once per host.
//!
//! A segment is stored as two files: the member itself and its index (`hardway segment v1`, the tar length,
//! the member's length and BLAKE3, then the entries' record lines), which [`Segment::from_parts`] checks.

use std::collections::BTreeMap;

use super::BundleError;
use super::gzip::{self, Member};
use super::overlay::Entry;
use super::record::{self, Records, hex, lines, parse_records, render_line, unhex};
use super::tar::{self, MemberType};
use super::write::{Scratch, emit_entry};

const SEGMENT_MAGIC: &str = "hardway segment v1";

/// A precompressed run of tar entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    records: Records,
    member: Vec<u8>,
    tar_len: u64,
}

impl Segment {
    /// Compresses `entries` (absolute overlay paths; their parent directories are left to the overlays
    /// the segment is spliced into) into one gzip member.
    pub fn compress(entries: &BTreeMap<String, Entry>) -> Result<Segment, BundleError> {
        if entries.is_empty() {
            return Err(BundleError::Segment {
                reason: "it has no entries",
            });
        }
        let mut member = Member::start(Vec::new()).map_err(BundleError::Write)?;
        let mut scratch = Scratch::new();
        let mut records = Records::new();
        let mut tar_len = 0;
        for (path, entry) in entries {
            record::validate_path(path)?;
            record::validate_mode(path, entry.mode)?;
            let r = emit_entry(&mut member, path, entry, &mut scratch)?;
            tar_len += entry_tar_len(path, &r);
            records.insert(path.clone(), r);
        }
        let member = member.finish().map_err(BundleError::Write)?;
        Ok(Segment {
            records,
            member,
            tar_len,
        })
    }

    /// The entries' records, in path order.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The gzip member, exactly as it is spliced into bundles.
    pub fn member(&self) -> &[u8] {
        &self.member
    }

    /// The length of the tar bytes the member decompresses to.
    pub fn tar_len(&self) -> u64 {
        self.tar_len
    }

    /// The index to store next to the member.
    pub fn index(&self) -> String {
        let mut text = format!(
            "{SEGMENT_MAGIC}\ntar-size {}\nmember-size {}\nmember-blake3 {}\n",
            self.tar_len,
            self.member.len(),
            hex(blake3::hash(&self.member).as_bytes()),
        );
        for (path, r) in &self.records {
            text.push_str(&render_line(path, r));
            text.push('\n');
        }
        text
    }

    /// Rebuilds a segment from its stored index and member, checking the member's length and BLAKE3, its
    /// fixed gzip header, and that its trailer's length matches the entries.
    pub fn from_parts(index: &str, member: Vec<u8>) -> Result<Segment, BundleError> {
        const WHAT: &str = "segment index";
        let lines = lines(WHAT, index)?;
        if lines.len() < 5 {
            return Err(BundleError::Parse {
                what: WHAT,
                line: lines.len(),
                message: "the index is truncated (a segment has at least one entry)".to_owned(),
            });
        }
        if lines[0].1 != SEGMENT_MAGIC {
            return Err(BundleError::Parse {
                what: WHAT,
                line: 1,
                message: format!("expected {SEGMENT_MAGIC:?}, found {:?}", lines[0].1),
            });
        }
        let number = |i: usize, key| {
            record::parse_decimal(record::field(WHAT, lines[i], key)?).map_err(|message| {
                BundleError::Parse {
                    what: WHAT,
                    line: i + 1,
                    message,
                }
            })
        };
        let tar_len = number(1, "tar-size")?;
        let member_len = number(2, "member-size")?;
        let blake3: [u8; 32] =
            unhex(record::field(WHAT, lines[3], "member-blake3")?).ok_or(BundleError::Parse {
                what: WHAT,
                line: 4,
                message: "expected 64 lowercase hex digits of BLAKE3".to_owned(),
            })?;
        let records = parse_records(WHAT, &lines[4..])?;
        if member.len() as u64 != member_len || *blake3::hash(&member).as_bytes() != blake3 {
            return Err(BundleError::Segment {
                reason: "the member's length or BLAKE3 differs from its index",
            });
        }
        let expected: u64 = records.iter().map(|(p, r)| entry_tar_len(p, r)).sum();
        if expected != tar_len || gzip::trailer_len(&member) != Some(tar_len as u32) {
            return Err(BundleError::Segment {
                reason: "the tar length in the index or the member's trailer does not match the entries",
            });
        }
        Ok(Segment {
            records,
            member,
            tar_len,
        })
    }
}

fn entry_tar_len(path: &str, r: &record::EntryRecord) -> u64 {
    match r.kind {
        record::RecordKind::Dir => tar::member_len(&tar::member_name(path, MemberType::Dir), 0),
        record::RecordKind::File(d) => {
            tar::member_len(&tar::member_name(path, MemberType::File), d.size)
        }
    }
}
