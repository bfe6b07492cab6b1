//! What a bundle holds at one path, and the one-line text form shared by overlay listings, manifests and
//! segment indexes: `d 0755 /etc/kubernetes` or `f 0600 <sha256 hex> <size> /var/lib/kubernetes/ca-key.pem`.
//!
//! The path comes last so that it may contain spaces; paths never contain control characters (see
//! [`validate_path`]), so a line is always one entry. Parsing accepts only the canonical form (lowercase hex,
//! four octal mode digits, no leading zeros in sizes), so one entry has exactly one line.

use std::collections::BTreeMap;

use super::BundleError;

/// A file's length and SHA-256: what `push` and `check` compare without opening the tarball.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: [u8; 32],
}

/// The record of one entry: its mode, and for a file its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryRecord {
    pub mode: u32,
    pub kind: RecordKind,
}

/// A directory, or a file with its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Dir,
    File(FileDigest),
}

/// Records by absolute target path; the map's order is the bundle's order.
pub type Records = BTreeMap<String, EntryRecord>;

/// Checks that `path` is absolute and normalised: `/`-separated components, none empty, `.` or `..`, no
/// trailing `/`, not `/` itself, and no control characters (NUL, newline, ...).
pub fn validate_path(path: &str) -> Result<(), BundleError> {
    let bad = |reason| {
        Err(BundleError::Path {
            path: path.to_owned(),
            reason,
        })
    };
    let Some(rest) = path.strip_prefix('/') else {
        return bad("not absolute");
    };
    if rest.is_empty() {
        return bad("the root directory itself cannot be an entry");
    }
    if path.chars().any(char::is_control) {
        return bad("contains a control character (NUL, newline, ...)");
    }
    for component in rest.split('/') {
        match component {
            "" => return bad("empty component (`//` or a trailing `/`)"),
            "." => return bad("`.` component"),
            ".." => return bad("`..` component"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that `mode` holds only permission bits (including setuid, setgid and sticky).
pub fn validate_mode(path: &str, mode: u32) -> Result<(), BundleError> {
    if mode & !0o7777 == 0 {
        Ok(())
    } else {
        Err(BundleError::Mode {
            path: path.to_owned(),
            mode,
        })
    }
}

/// The parent directory of a validated path, or `None` for a top-level entry such as `/etc`.
pub fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Renders one entry as its line, without the newline.
pub fn render_line(path: &str, record: &EntryRecord) -> String {
    match record.kind {
        RecordKind::Dir => format!("d {:04o} {path}", record.mode),
        RecordKind::File(d) => {
            format!("f {:04o} {} {} {path}", record.mode, hex(&d.sha256), d.size)
        }
    }
}

/// Parses one canonical entry line.
pub fn parse_line(line: &str) -> Result<(String, EntryRecord), String> {
    let (kind, rest) = line
        .split_once(' ')
        .ok_or("expected `d` or `f` and fields")?;
    let (mode, rest) = rest.split_once(' ').ok_or("expected a mode and a path")?;
    let mode = parse_mode(mode)?;
    let (kind, path) = match kind {
        "d" => (RecordKind::Dir, rest),
        "f" => {
            let (sha, rest) = rest
                .split_once(' ')
                .ok_or("expected a SHA-256, a size and a path")?;
            let (size, path) = rest.split_once(' ').ok_or("expected a size and a path")?;
            let digest = FileDigest {
                size: parse_decimal(size)?,
                sha256: unhex(sha).ok_or("expected 64 lowercase hex digits of SHA-256")?,
            };
            (RecordKind::File(digest), path)
        }
        other => {
            return Err(format!(
                "unknown entry type {other:?} (expected `d` or `f`)"
            ));
        }
    };
    validate_path(path).map_err(|e| e.to_string())?;
    validate_mode(path, mode).map_err(|e| e.to_string())?;
    Ok((path.to_owned(), EntryRecord { mode, kind }))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    if s.len() == 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        u32::from_str_radix(s, 8).map_err(|e| e.to_string())
    } else {
        Err(format!("mode {s:?} is not four octal digits"))
    }
}

/// A canonical decimal `u64`: digits only, no leading zeros (except `0` itself).
pub fn parse_decimal(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(format!("{s:?} is not a canonical decimal number"));
    }
    s.parse().map_err(|e| format!("{s:?}: {e}"))
}

pub use crate::formats::hex::{hex, unhex};

/// Splits canonical text into `(line number, line)`, requiring a final newline and no `\r`.
pub fn lines<'a>(what: &'static str, text: &'a str) -> Result<Vec<(usize, &'a str)>, BundleError> {
    let err = |line, message: &str| BundleError::Parse {
        what,
        line,
        message: message.to_owned(),
    };
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| err(text.lines().count().max(1), "text must end with a newline"))?;
    body.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if l.contains('\r') {
                Err(err(i + 1, "carriage return in line"))
            } else {
                Ok((i + 1, l))
            }
        })
        .collect()
}

/// Expects `line` to be exactly `key value` and returns the value.
pub fn field<'a>(
    what: &'static str,
    (n, line): (usize, &'a str),
    key: &str,
) -> Result<&'a str, BundleError> {
    line.strip_prefix(key)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| BundleError::Parse {
            what,
            line: n,
            message: format!("expected `{key} ...`, found {line:?}"),
        })
}

/// Parses entry lines into records, requiring strictly increasing paths (the canonical order).
pub fn parse_records(what: &'static str, lines: &[(usize, &str)]) -> Result<Records, BundleError> {
    let mut records = Records::new();
    for &(n, line) in lines {
        let (path, record) = parse_line(line).map_err(|message| BundleError::Parse {
            what,
            line: n,
            message,
        })?;
        if records
            .last_key_value()
            .is_some_and(|(last, _)| last.as_str() >= path.as_str())
        {
            return Err(BundleError::Parse {
                what,
                line: n,
                message: format!(
                    "{path:?} is out of order or repeated (entries are sorted by path)"
                ),
            });
        }
        records.insert(path, record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let file = EntryRecord {
            mode: 0o600,
            kind: RecordKind::File(FileDigest {
                size: 1234,
                sha256: [0xab; 32],
            }),
        };
        let line = render_line("/var/lib/a b", &file);
        assert_eq!(
            line,
            format!("f 0600 {} 1234 /var/lib/a b", "ab".repeat(32))
        );
        assert_eq!(parse_line(&line), Ok(("/var/lib/a b".to_owned(), file)));
        let dir = EntryRecord {
            mode: 0o4755,
            kind: RecordKind::Dir,
        };
        assert_eq!(render_line("/etc", &dir), "d 4755 /etc");
        assert_eq!(parse_line("d 4755 /etc"), Ok(("/etc".to_owned(), dir)));
    }

    #[test]
    fn non_canonical_lines_are_rejected() {
        for bad in [
            "d 755 /etc",
            "d 0755 etc",
            "d 0755 /etc/",
            "d 0755 /etc/../x",
            "x 0755 /etc",
            "f 0600 AB 1 /x",
            "f 0600 0000000000000000000000000000000000000000000000000000000000000000 01 /x",
            "d 0755  /etc",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn paths() {
        for ok in ["/etc", "/var/lib/kubernetes/ca.pem", "/a b/c"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/", "etc", "/etc/", "//etc", "/etc//x", "/./etc", "/etc/..", "/a\0b", "/a\nb",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parent("/etc"), None);
        assert_eq!(parent("/etc/x/y"), Some("/etc/x"));
    }
}
