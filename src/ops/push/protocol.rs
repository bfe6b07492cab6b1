//! What travels over the one SSH session of a push: the header hardway writes on the target program's stdin,
//! and the report lines the program prints on its stdout.
//!
//! Header (text lines), then, only after the program printed `need-bundle`, the bundle's bytes to end of file:
//! ```text
//! hardway-push 1
//! mode push            (push, dry-run or rollback)
//! root /               (the directory the bundle's paths are under)
//! host node1
//! manifest 31          (the number of manifest lines that follow; 0 for a rollback)
//! hardway bundle manifest v1
//! …                    (the manifest, verbatim)
//! end
//! ```
//! Report lines, one per line, the path always last (paths never contain spaces: the program refuses them):
//! ```text
//! hello 1                                   the program started (protocol version 1)
//! receipt none | receipt GEN SHA256         what the target had
//! drift content|missing|type PATH           a file changed by hand since the last push
//! drift mode RECORDED FOUND PATH
//! change add|content|remove|rmdir PATH      what the push changes (or would change, in a dry run)
//! change mode FROM TO PATH | change owner FROM TO PATH | change mkdir MODE PATH
//! note TEXT
//! need-bundle                               send the bundle now
//! result unchanged|updated|rolled-back GEN SHA256 | result dry-run CHANGES
//! error TEXT                                refused or failed (the program then exits 1)
//! ```
//! Anything else on stdout (a login script's chatter) is ignored.

use super::Mode;

/// The protocol version both sides speak.
pub const VERSION: u32 = 1;

/// The header for `mode`, ending with `end`: a rollback sends no manifest.
pub fn header(mode: Mode, root: &str, host: &str, manifest: &str) -> String {
    let lines: Vec<&str> = match mode {
        Mode::Rollback => Vec::new(),
        Mode::Push | Mode::DryRun => manifest.lines().collect(),
    };
    let mut h = format!(
        "hardway-push {VERSION}\nmode {}\nroot {root}\nhost {host}\nmanifest {}\n",
        mode.word(),
        lines.len()
    );
    for l in lines {
        h.push_str(l);
        h.push('\n');
    }
    h.push_str("end\n");
    h
}

/// One drift or change line: its kind (`content`, `mode`, `add`, …), the fields between kind and path, the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub kind: String,
    pub detail: Vec<String>,
    pub path: String,
}

impl Item {
    fn parse(rest: &str) -> Option<Item> {
        let fields: Vec<&str> = rest.split(' ').collect();
        let (kind, rest) = fields.split_first()?;
        let (path, detail) = rest.split_last()?;
        Some(Item {
            kind: (*kind).to_string(),
            detail: detail.iter().map(|s| (*s).to_string()).collect(),
            path: (*path).to_string(),
        })
    }

    /// How a drift line reads: what was changed on the target by hand.
    pub fn describe_drift(&self) -> String {
        match (self.kind.as_str(), self.detail.as_slice()) {
            ("content", _) => format!("{}: content changed on the host", self.path),
            ("missing", _) => format!("{}: removed on the host", self.path),
            ("type", _) => format!("{}: no longer a plain file or directory", self.path),
            ("mode", [from, to]) => {
                format!("{}: mode changed on the host, {from} → {to}", self.path)
            }
            _ => format!("{}: {} {}", self.path, self.kind, self.detail.join(" ")),
        }
    }

    /// How a change line reads.
    pub fn describe_change(&self) -> String {
        match (self.kind.as_str(), self.detail.as_slice()) {
            ("add", _) => format!("add {}", self.path),
            ("content", _) => format!("change {} (content)", self.path),
            ("mode", [from, to]) => format!("change {} (mode {from} → {to})", self.path),
            ("owner", [from, to]) => format!("change {} (owner {from} → {to})", self.path),
            ("remove", _) => format!("remove {}", self.path),
            ("mkdir", [mode]) => format!("add {}/ (directory, mode {mode})", self.path),
            ("rmdir", _) => format!("remove {}/ (directory hardway made)", self.path),
            _ => format!("{} {} {}", self.kind, self.detail.join(" "), self.path),
        }
    }
}

/// The final word of the target program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    Unchanged { generation: u64, sha256: String },
    Updated { generation: u64, sha256: String },
    RolledBack { generation: u64, sha256: String },
    DryRun { changes: u64 },
}

/// One report line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Hello(u32),
    /// `None`: the target has no receipt (never pushed).
    Receipt(Option<(u64, String)>),
    Drift(Item),
    Change(Item),
    Note(String),
    NeedBundle,
    Result(Finish),
    Error(String),
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses one report line; `None` for a line that is not one (ignored).
pub fn parse_line(line: &str) -> Option<Line> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let gen_sha = |rest: &str| -> Option<(u64, String)> {
        let (g, s) = rest.split_once(' ')?;
        if !is_sha256(s) {
            return None;
        }
        Some((g.parse().ok()?, s.to_string()))
    };
    Some(match word {
        "hello" => Line::Hello(rest.parse().ok()?),
        "receipt" if rest == "none" => Line::Receipt(None),
        "receipt" => Line::Receipt(Some(gen_sha(rest)?)),
        "drift" => Line::Drift(Item::parse(rest)?),
        "change" => Line::Change(Item::parse(rest)?),
        "note" => Line::Note(rest.to_string()),
        "need-bundle" if rest.is_empty() => Line::NeedBundle,
        "error" => Line::Error(rest.to_string()),
        "result" => {
            let (what, rest) = rest.split_once(' ')?;
            Line::Result(match what {
                "dry-run" => Finish::DryRun {
                    changes: rest.parse().ok()?,
                },
                "unchanged" | "updated" | "rolled-back" => {
                    let (generation, sha256) = gen_sha(rest)?;
                    match what {
                        "unchanged" => Finish::Unchanged { generation, sha256 },
                        "updated" => Finish::Updated { generation, sha256 },
                        _ => Finish::RolledBack { generation, sha256 },
                    }
                }
                _ => return None,
            })
        }
        _ => return None,
    })
}

/// Everything one session reported, in order of arrival.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub hello: Option<u32>,
    /// `Some(None)`: the target said it has no receipt.
    pub receipt: Option<Option<(u64, String)>>,
    pub drift: Vec<Item>,
    pub changes: Vec<Item>,
    pub notes: Vec<String>,
    pub result: Option<Finish>,
    pub error: Option<String>,
    /// Lines that were not report lines.
    pub noise: Vec<String>,
}

impl Session {
    /// Records a line (`NeedBundle` is the caller's business).
    pub fn record(&mut self, raw: &str) {
        match parse_line(raw) {
            Some(Line::Hello(v)) => self.hello = Some(v),
            Some(Line::Receipt(r)) => self.receipt = Some(r),
            Some(Line::Drift(i)) => self.drift.push(i),
            Some(Line::Change(i)) => self.changes.push(i),
            Some(Line::Note(n)) => self.notes.push(n),
            Some(Line::Result(f)) => self.result = Some(f),
            Some(Line::Error(e)) => self.error = Some(e),
            Some(Line::NeedBundle) => {}
            None => self.noise.push(raw.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "1ba5242390d38e9d2f5547e38ed86754075bfebfac4972c9dbf13ab6c6af96df";

    #[test]
    fn header_carries_the_manifest_verbatim() {
        let h = header(Mode::Push, "/", "node1", "a\nb c\n");
        assert_eq!(
            h,
            "hardway-push 1\nmode push\nroot /\nhost node1\nmanifest 2\na\nb c\nend\n"
        );
        let r = header(Mode::Rollback, "/srv", "node1", "ignored\n");
        assert_eq!(
            r,
            "hardway-push 1\nmode rollback\nroot /srv\nhost node1\nmanifest 0\nend\n"
        );
    }

    #[test]
    fn report_lines() {
        assert_eq!(parse_line("hello 1"), Some(Line::Hello(1)));
        assert_eq!(parse_line("receipt none"), Some(Line::Receipt(None)));
        assert_eq!(
            parse_line(&format!("receipt 3 {SHA}")),
            Some(Line::Receipt(Some((3, SHA.to_string()))))
        );
        assert_eq!(
            parse_line("drift mode 0644 0640 /etc/x"),
            Some(Line::Drift(Item {
                kind: "mode".into(),
                detail: vec!["0644".into(), "0640".into()],
                path: "/etc/x".into()
            }))
        );
        assert_eq!(
            parse_line("change add /etc/x").map(|l| match l {
                Line::Change(i) => i.describe_change(),
                _ => String::new(),
            }),
            Some("add /etc/x".to_string())
        );
        assert_eq!(parse_line("need-bundle"), Some(Line::NeedBundle));
        assert_eq!(
            parse_line(&format!("result rolled-back 2 {SHA}")),
            Some(Line::Result(Finish::RolledBack {
                generation: 2,
                sha256: SHA.to_string()
            }))
        );
        assert_eq!(
            parse_line("result dry-run 4"),
            Some(Line::Result(Finish::DryRun { changes: 4 }))
        );
        assert_eq!(
            parse_line("error no good"),
            Some(Line::Error("no good".into()))
        );
        for noise in [
            "Welcome to Debian",
            "result updated 2 nothex",
            "receipt x y",
            "drift",
            "hello",
        ] {
            assert_eq!(parse_line(noise), None, "{noise}");
        }
    }
}
