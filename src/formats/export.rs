//! The export archive (`hardway export`/`import`): one uncompressed tar, written with the `tar` crate with
//! fixed header fields (owner 0:0, mtime 0, no user or group names), so the same members give the same bytes.
//!
//! Members, in this order:
//! 1. `MANIFEST` — the text below: every other member's SHA-256, size, mode and path, and the `out/` links;
//! 2. `SIGNATURE` — `name:base64` Ed25519 signature of the `MANIFEST` bytes (see [`crate::keys::sign`]);
//! 3. every member the manifest lists, in its order (sorted by path).
//!
//! ```text
//! hardway export v1
//! key <key name>
//! recipe <file name of the recipe>
//! link <out/ name> <member path>
//! member <sha256 hex> <size> <mode, octal> <path>
//! ```
//! Member paths are `recipe/<file>` or `store/<store name>[.drv|/<file>...]`, made of letters, digits and
//! `. _ + -` between slashes; modes are 0600, 0644 or 0755. Nothing here knows what a store path holds.

use std::io::{self, Read, Write};

use super::hex::{hex, unhex};

/// The first line of a manifest.
pub const FORMAT: &str = "hardway export v1";
/// The first member: the signed list of the others.
pub const MANIFEST: &str = "MANIFEST";
/// The second member: the signature of `MANIFEST`.
pub const SIGNATURE: &str = "SIGNATURE";

/// One listed member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// One `out/` link the importing side makes: `out/<name>` → the member `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub target: String,
}

/// The parsed `MANIFEST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportManifest {
    pub key: String,
    pub recipe: String,
    pub links: Vec<Link>,
    pub members: Vec<Member>,
}

/// Why an archive or its manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportFormatError {
    #[error("MANIFEST line {line}: {message}")]
    Manifest { line: usize, message: String },
    #[error("member {member:?}: {reason}")]
    Member { member: String, reason: String },
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
}

/// Whether `path` is a member path this format allows.
pub fn valid_path(path: &str) -> bool {
    let mut parts = path.split('/');
    matches!(parts.next(), Some("recipe" | "store"))
        && path.split('/').count() >= 2
        && path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        })
}

impl ExportManifest {
    /// The manifest's text (what is signed).
    pub fn render(&self) -> String {
        let mut s = format!("{FORMAT}\nkey {}\nrecipe {}\n", self.key, self.recipe);
        for l in &self.links {
            s.push_str(&format!("link {} {}\n", l.name, l.target));
        }
        for m in &self.members {
            s.push_str(&format!(
                "member {} {} {:04o} {}\n",
                hex(&m.sha256),
                m.size,
                m.mode,
                m.path
            ));
        }
        s
    }

    /// Parses and checks a manifest: known lines only, valid paths and modes, members sorted and unique, every
    /// link to a member.
    pub fn parse(text: &str) -> Result<ExportManifest, ExportFormatError> {
        let err = |line: usize, message: &str| ExportFormatError::Manifest {
            line,
            message: message.to_string(),
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        if lines.next().map(|(_, l)| l) != Some(FORMAT) {
            return Err(err(1, &format!("not {FORMAT:?}")));
        }
        let mut key = None;
        let mut recipe = None;
        let mut links = Vec::new();
        let mut members: Vec<Member> = Vec::new();
        for (n, line) in lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["key", k] if key.is_none() => key = Some(k.to_string()),
                ["recipe", r] if recipe.is_none() => {
                    if !valid_path(&format!("recipe/{r}")) {
                        return Err(err(n, "a recipe file name with unexpected characters"));
                    }
                    recipe = Some(r.to_string());
                }
                ["link", name, target] => {
                    if !valid_path(&format!("recipe/{name}")) || !valid_path(target) {
                        return Err(err(n, "a link with unexpected characters"));
                    }
                    links.push(Link {
                        name: name.to_string(),
                        target: target.to_string(),
                    });
                }
                ["member", sha, size, mode, path] => {
                    let sha256 =
                        unhex::<32>(sha).ok_or_else(|| err(n, "a SHA-256 that is not 64 hex"))?;
                    let size = size
                        .parse()
                        .map_err(|_| err(n, "a size that is not a number"))?;
                    let mode = match *mode {
                        "0600" => 0o600,
                        "0644" => 0o644,
                        "0755" => 0o755,
                        _ => return Err(err(n, "a mode other than 0600, 0644 or 0755")),
                    };
                    if !valid_path(path) || [MANIFEST, SIGNATURE].contains(path) {
                        return Err(err(
                            n,
                            &format!("a member path {path:?} this format does not allow"),
                        ));
                    }
                    if members.last().is_some_and(|m| m.path.as_str() >= *path) {
                        return Err(err(n, "members not sorted by path, or listed twice"));
                    }
                    members.push(Member {
                        path: path.to_string(),
                        mode,
                        size,
                        sha256,
                    });
                }
                _ => return Err(err(n, "an unknown or repeated line")),
            }
        }
        let (Some(key), Some(recipe)) = (key, recipe) else {
            return Err(err(0, "no `key` or `recipe` line"));
        };
        for l in &links {
            if !members.iter().any(|m| m.path == l.target) {
                return Err(ExportFormatError::Member {
                    member: l.target.clone(),
                    reason: format!("out/{} links to it, but it is not a member", l.name),
                });
            }
        }
        Ok(ExportManifest {
            key,
            recipe,
            links,
            members,
        })
    }
}

/// Writes an archive: `MANIFEST`, `SIGNATURE`, then each member's bytes from `open(member)`.
pub fn write<W: Write>(
    w: W,
    manifest: &ExportManifest,
    signature: &str,
    mut open: impl FnMut(&Member) -> io::Result<Box<dyn Read>>,
) -> Result<W, ExportFormatError> {
    let mut b = tar::Builder::new(w);
    let text = manifest.render();
    append(&mut b, MANIFEST, 0o644, text.len() as u64, text.as_bytes())?;
    let sig = format!("{signature}\n");
    append(&mut b, SIGNATURE, 0o644, sig.len() as u64, sig.as_bytes())?;
    for m in &manifest.members {
        let r = open(m).map_err(ExportFormatError::Write)?;
        append(&mut b, &m.path, m.mode, m.size, r.take(m.size))?;
    }
    b.into_inner().map_err(ExportFormatError::Write)
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    size: u64,
    data: impl Read,
) -> Result<(), ExportFormatError> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, path, data)
        .map_err(ExportFormatError::Write)
}

/// One member as it is read: its name, mode and size from the tar header, and its bytes.
pub struct Entry<'a> {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub data: &'a mut dyn Read,
}

/// Reads an archive member by member, in order, refusing anything but regular files with allowed names.
/// `visit`'s own error (any type a format error converts into) stops the reading and is returned as it is.
pub fn read<E: From<ExportFormatError>>(
    reader: impl Read,
    mut visit: impl FnMut(Entry<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(ExportFormatError::Read)? {
        let mut entry = entry.map_err(ExportFormatError::Read)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: &str| ExportFormatError::Member {
            member: path.clone(),
            reason: reason.to_string(),
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(
                refuse("not a regular file (links, directories and devices are refused)").into(),
            );
        }
        if path != MANIFEST && path != SIGNATURE && !valid_path(&path) {
            return Err(refuse("a name this format does not allow").into());
        }
        let mode = entry.header().mode().map_err(ExportFormatError::Read)? & 0o7777;
        let size = entry.header().size().map_err(ExportFormatError::Read)?;
        visit(Entry {
            path: path.clone(),
            mode,
            size,
            data: &mut entry,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExportManifest {
        ExportManifest {
            key: "k-1".into(),
            recipe: "seed.toml".into(),
            links: vec![Link {
                name: "a.tar.gz".into(),
                target: "store/x-a/a.tar.gz".into(),
            }],
            members: vec![
                Member {
                    path: "recipe/seed.toml".into(),
                    mode: 0o644,
                    size: 3,
                    sha256: [1; 32],
                },
                Member {
                    path: "store/x-a/a.tar.gz".into(),
                    mode: 0o600,
                    size: 2,
                    sha256: [2; 32],
                },
            ],
        }
    }

    #[test]
    fn manifest_round_trips_and_refuses_what_it_does_not_know() {
        let m = sample();
        assert_eq!(ExportManifest::parse(&m.render()).expect("parse"), m);
        for (from, to) in [
            ("member ", "member  "),
            (" 0600 ", " 4755 "),
            ("store/x-a/a.tar.gz\n", "store/../a.tar.gz\n"),
            ("recipe/seed.toml", "zzz/seed.toml"),
            ("key k-1\n", "key k-1\nkey k-2\n"),
        ] {
            let text = m.render().replacen(from, to, 1);
            assert!(ExportManifest::parse(&text).is_err(), "accepted: {text}");
        }
        let mut unsorted = m.clone();
        unsorted.members.reverse();
        assert!(ExportManifest::parse(&unsorted.render()).is_err());
        let mut dangling = m;
        dangling.links[0].target = "store/y/b".into();
        assert!(ExportManifest::parse(&dangling.render()).is_err());
    }

    #[test]
    fn archives_are_deterministic_and_read_back_in_order() {
        let m = sample();
        let data = |mem: &Member| -> io::Result<Box<dyn Read>> {
            Ok(Box::new(io::Cursor::new(vec![b'x'; mem.size as usize])))
        };
        let a = write(Vec::new(), &m, "k-1:sig", data).expect("write");
        let b = write(Vec::new(), &m, "k-1:sig", data).expect("write");
        assert_eq!(a, b);
        let mut seen = Vec::new();
        read(a.as_slice(), |e| {
            let mut bytes = Vec::new();
            e.data
                .read_to_end(&mut bytes)
                .map_err(ExportFormatError::Read)?;
            seen.push((e.path, e.mode, bytes.len() as u64));
            Ok::<(), ExportFormatError>(())
        })
        .expect("read");
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                MANIFEST,
                SIGNATURE,
                "recipe/seed.toml",
                "store/x-a/a.tar.gz"
            ]
        );
        assert_eq!(seen[3].1, 0o600);
        assert_eq!(seen[3].2, 2);
    }
}
