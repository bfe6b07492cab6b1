//! Reading a bundle back, with the `tar` crate: each member's path, type, mode, size and SHA-256, and the
//! compressed stream's own size and hashes, checked against a [`Manifest`].
//!
//! What any reader of a bundle refuses, whoever made it: absolute member names, `.`/`..` components,
//! symbolic and hard links, devices, FIFOs and any other type than file and directory, setuid/setgid bits,
//! a member twice, a member whose parent directory is not an earlier member, and bytes after the end.

use std::collections::BTreeMap;
use std::io::{self, Read};

use sha2::Digest;

use super::BundleError;
use super::manifest::{BundleDigest, Manifest};
use super::record::{self, EntryRecord, FileDigest, RecordKind, Records};

/// Reads every member of a `.tar.gz` bundle (one or several gzip members): their records, in stream order
/// (which is path order for a bundle hardway wrote), and the digest of the compressed bytes read.
pub fn read_bundle(reader: impl Read) -> Result<(Records, BundleDigest), BundleError> {
    let mut hashing = HashingReader::new(reader);
    let mut records = Records::new();
    {
        let gz = flate2::read::MultiGzDecoder::new(&mut hashing);
        let mut archive = tar::Archive::new(gz);
        let entries = archive.entries().map_err(BundleError::Read)?;
        for entry in entries {
            let mut entry = entry.map_err(BundleError::Read)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let unsafe_member = |reason: &'static str| BundleError::Unsafe {
                member: raw.clone(),
                reason,
            };
            let header = entry.header();
            let mode = header.mode().map_err(BundleError::Read)?;
            if mode & 0o6000 != 0 {
                return Err(unsafe_member("setuid or setgid bit"));
            }
            let is_dir = match header.entry_type() {
                tar::EntryType::Regular => false,
                tar::EntryType::Directory => true,
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    return Err(unsafe_member("a link"));
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    return Err(unsafe_member("a device or FIFO"));
                }
                _ => return Err(unsafe_member("neither a file nor a directory")),
            };
            if raw.starts_with('/') {
                return Err(unsafe_member("an absolute name"));
            }
            let rel = if is_dir {
                raw.strip_suffix('/').unwrap_or(&raw)
            } else {
                raw.as_str()
            };
            let path = format!("/{rel}");
            record::validate_path(&path)
                .map_err(|_| unsafe_member("not a normalised relative name"))?;
            if let Some(parent) = record::parent(&path)
                && !matches!(
                    records.get(parent),
                    Some(EntryRecord {
                        kind: RecordKind::Dir,
                        ..
                    })
                )
            {
                return Err(unsafe_member(
                    "its parent directory is not an earlier member",
                ));
            }
            if records.contains_key(&path) {
                return Err(unsafe_member("a second member of the same name"));
            }
            let kind = if is_dir {
                RecordKind::Dir
            } else {
                let mut sha = sha2::Sha256::new();
                let size =
                    io::copy(&mut entry, &mut DigestWriter(&mut sha)).map_err(BundleError::Read)?;
                RecordKind::File(FileDigest {
                    size,
                    sha256: sha.finalize().into(),
                })
            };
            records.insert(path, EntryRecord { mode, kind });
        }
        // Whatever follows the end-of-archive blocks (the gzip stream's rest) must be padding only.
        let mut rest = archive.into_inner();
        let mut tail = Vec::new();
        rest.read_to_end(&mut tail).map_err(BundleError::Read)?;
        if tail.iter().any(|&b| b != 0) {
            return Err(BundleError::Unsafe {
                member: "(end of archive)".to_string(),
                reason: "data after the end of the archive",
            });
        }
    }
    io::copy(&mut hashing, &mut io::sink()).map_err(BundleError::Read)?;
    Ok((records, hashing.digest()))
}

/// Checks a bundle against its manifest: the compressed bytes' size and hashes, then every member. The
/// error names the first member (in path order) that differs and how.
pub fn verify_bundle(manifest: &Manifest, reader: impl Read) -> Result<(), BundleError> {
    let (records, digest) = read_bundle(reader)?;
    if digest != manifest.bundle {
        return Err(BundleError::Differs {
            path: "(the bundle file)".to_string(),
            what: "size or hash differs from the manifest's".to_string(),
        });
    }
    first_difference(&manifest.entries, &records).map_or(Ok(()), Err)
}

/// The first entry, in path order, that `found` has differently from `expected`.
pub fn first_difference(expected: &Records, found: &Records) -> Option<BundleError> {
    let mut all: BTreeMap<&String, (Option<&EntryRecord>, Option<&EntryRecord>)> = BTreeMap::new();
    for (p, r) in expected {
        all.entry(p).or_default().0 = Some(r);
    }
    for (p, r) in found {
        all.entry(p).or_default().1 = Some(r);
    }
    all.into_iter().find_map(|(path, pair)| {
        let what = match pair {
            (Some(_), None) => "missing from the bundle".to_string(),
            (None, Some(_)) => "in the bundle but not in the manifest".to_string(),
            (Some(e), Some(f)) if e == f => return None,
            (Some(e), Some(f)) => match (e.kind, f.kind) {
                (RecordKind::Dir, RecordKind::File(_)) => "a file, not a directory".to_string(),
                (RecordKind::File(_), RecordKind::Dir) => "a directory, not a file".to_string(),
                _ if e.mode != f.mode => format!("mode {:04o}, not {:04o}", f.mode, e.mode),
                (RecordKind::File(a), RecordKind::File(b)) if a.size != b.size => {
                    format!("{} bytes, not {}", b.size, a.size)
                }
                _ => "content (SHA-256) differs".to_string(),
            },
            (None, None) => return None,
        };
        Some(BundleError::Differs {
            path: path.clone(),
            what,
        })
    })
}

struct DigestWriter<'a>(&'a mut sha2::Sha256);

impl io::Write for DigestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Passes bytes through while hashing them as [`BundleDigest`] does.
struct HashingReader<R> {
    inner: R,
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            sha256: sha2::Sha256::new(),
            blake3: blake3::Hasher::new(),
            size: 0,
        }
    }

    fn digest(self) -> BundleDigest {
        BundleDigest {
            size: self.size,
            sha256: self.sha256.finalize().into(),
            blake3: *self.blake3.finalize().as_bytes(),
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.blake3.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .tar.gz of raw headers: (name, type, mode, data).
    fn crafted(members: &[(&str, tar::EntryType, u32, &[u8])]) -> Vec<u8> {
        let mut tar_bytes = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar_bytes);
            for (name, ty, mode, data) in members {
                let mut h = tar::Header::new_gnu();
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_entry_type(*ty);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                if *ty == tar::EntryType::Symlink {
                    h.set_size(0);
                    h.as_old_mut().linkname[..4].copy_from_slice(b"/etc");
                }
                h.set_cksum();
                b.append(
                    &h,
                    if *ty == tar::EntryType::Symlink {
                        &[][..]
                    } else {
                        *data
                    },
                )
                .expect("append");
            }
            b.finish().expect("finish");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar_bytes).expect("gz");
        gz.finish().expect("gz")
    }

    const DIR: tar::EntryType = tar::EntryType::Directory;
    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn reads_a_plain_bundle() {
        let b = crafted(&[("etc/", DIR, 0o755, b""), ("etc/x", FILE, 0o600, b"abc")]);
        let (records, digest) = read_bundle(b.as_slice()).expect("read");
        assert_eq!(digest.size, b.len() as u64);
        assert_eq!(records.len(), 2);
        let RecordKind::File(d) = records["/etc/x"].kind else {
            panic!("not a file")
        };
        assert_eq!(d.size, 3);
        assert_eq!(d.sha256, <[u8; 32]>::from(sha2::Sha256::digest(b"abc")));
        assert_eq!(records["/etc/x"].mode, 0o600);
    }

    #[test]
    fn refuses_unsafe_members() {
        for (case, members) in [
            ("absolute", vec![("/etc/", DIR, 0o755, &b""[..])]),
            (
                "dotdot",
                vec![("etc/", DIR, 0o755, b""), ("etc/../x", FILE, 0o644, b"a")],
            ),
            (
                "symlink",
                vec![
                    ("etc/", DIR, 0o755, b""),
                    ("etc/l", tar::EntryType::Symlink, 0o777, b""),
                ],
            ),
            (
                "device",
                vec![
                    ("etc/", DIR, 0o755, b""),
                    ("etc/d", tar::EntryType::Char, 0o644, b""),
                ],
            ),
            (
                "setuid",
                vec![("etc/", DIR, 0o755, b""), ("etc/s", FILE, 0o4755, b"a")],
            ),
            ("no parent", vec![("etc/x", FILE, 0o644, b"a")]),
            (
                "twice",
                vec![
                    ("etc/", DIR, 0o755, b""),
                    ("etc/x", FILE, 0o644, b"a"),
                    ("etc/x", FILE, 0o644, b"b"),
                ],
            ),
        ] {
            let b = crafted(&members);
            let err = read_bundle(b.as_slice()).expect_err(case);
            assert!(matches!(err, BundleError::Unsafe { .. }), "{case}: {err}");
        }
    }

    #[test]
    fn names_the_first_difference() {
        let b = crafted(&[("etc/", DIR, 0o755, b""), ("etc/x", FILE, 0o600, b"abc")]);
        let (mut expected, _) = read_bundle(b.as_slice()).expect("read");
        let (found, _) = read_bundle(b.as_slice()).expect("read");
        assert!(first_difference(&expected, &found).is_none());
        expected.get_mut("/etc/x").expect("x").mode = 0o644;
        let e = first_difference(&expected, &found)
            .expect("differs")
            .to_string();
        assert_eq!(e, "/etc/x: mode 0600, not 0644");
    }
}
