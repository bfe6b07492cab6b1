//! `verify`: rebuild everything from scratch into a temporary store (no reuse) and compare it, derivation by
//! derivation in dependency order, with the existing store, and its bundles with the lock.
//!
//! A difference names the first derivation whose output differs, then the first differing file in it, then
//! how: for a bundle the first tar member and field (from [`crate::formats::bundle::read_bundle`]); for a
//! public text file (PEM certificates, YAML, units, listings) a short diff of the first differing lines; for a
//! secret (a 0600 file) only that it differs and at which byte — never its bytes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::engine::builder::{Builder, Registry};
use crate::engine::graph::Graph;
use crate::engine::scheduler::{BuildError, Silent, realise};
use crate::engine::seed::Seed;
use crate::engine::source::{self, SourceBuilder, SourceParams};
use crate::engine::store::{Store, StoreError};
use crate::formats::bundle::{first_difference, read_bundle};

use super::lock::{Lock, LockError};

/// One derivation whose fresh output differs from the store's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub derivation: String,
    pub store_name: String,
    /// The first differing file (relative to the store path).
    pub file: String,
    pub detail: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Derivations rebuilt.
    pub rebuilt: usize,
    /// Derivations of the graph that the existing store does not have (compared with the lock only).
    pub not_in_store: usize,
    /// Every derivation whose output differs, in dependency order (the first one is the one to look at).
    pub differences: Vec<Difference>,
    /// How the fresh build differs from the lock (empty when it agrees or there is no lock).
    pub lock: Vec<String>,
    /// Whether a lock was found.
    pub locked: bool,
}

impl Report {
    pub fn identical(&self) -> bool {
        self.differences.is_empty() && self.lock.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "source {file} (sha256:{sha256}) is not in the store {}: bring it in with `hardway fetch RECIPE` or \
         `hardway add FILE` first",
        store.display()
    )]
    MissingSource {
        file: String,
        sha256: String,
        store: PathBuf,
    },
    #[error("the fresh build failed: {0}")]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Rebuilds `graph` into a fresh store under `scratch` (removed afterwards) and compares it with `store` and
/// with the lock at `lock_path`. Sources are copied from `store` (their SHA-256 is checked again).
pub fn verify(
    graph: &Graph,
    store: &Store,
    seed: &Seed,
    registry: &Registry,
    jobs: usize,
    scratch: &Path,
    lock_path: &Path,
) -> Result<Report, VerifyError> {
    let tmp = tempfile::Builder::new()
        .prefix(".hardway-verify-")
        .tempdir_in(scratch)
        .map_err(|source| VerifyError::Io {
            path: scratch.to_path_buf(),
            source,
        })?;
    let fresh = Store::open(&tmp.path().join("store"))?;
    for node in &graph.nodes {
        if node.drv.builder != SourceBuilder::NAME {
            continue;
        }
        let p: SourceParams = node
            .drv
            .params
            .deserialized()
            .map_err(|e| StoreError::Build {
                name: node.drv.name.clone(),
                source: crate::engine::builder::BuilderError::Params(e.to_string()),
            })?;
        let have = store.path(&node.store_name).join(&p.file);
        if !have.is_file() {
            return Err(VerifyError::MissingSource {
                file: p.file,
                sha256: p.sha256,
                store: store.root().to_path_buf(),
            });
        }
        source::admit(&fresh, node, &have)?;
    }
    let summary = realise(graph, &fresh, seed, registry, jobs, &Silent)?;
    let mut report = Report {
        rebuilt: summary.built,
        ..Report::default()
    };
    for node in &graph.nodes {
        let old = store.path(&node.store_name);
        if !old.is_dir() {
            report.not_in_store += 1;
            continue;
        }
        if let Some((file, detail)) = compare_dirs(&old, &fresh.path(&node.store_name))? {
            report.differences.push(Difference {
                derivation: node.drv.name.clone(),
                store_name: node.store_name.clone(),
                file,
                detail,
            });
        }
    }
    if let Some(locked) = Lock::read(lock_path)? {
        report.locked = true;
        let built = Lock::of(graph, &fresh, seed.fingerprint())?;
        report.lock = locked.differences(&built);
    }
    Ok(report)
}

/// Every file under `dir`, relative, with its mode bits and bytes.
fn files(dir: &Path) -> Result<BTreeMap<String, (u32, Vec<u8>)>, VerifyError> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| VerifyError::Io {
            path: e.path().unwrap_or(dir).to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let path = entry.path();
        let io = |source| VerifyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o7777;
        let bytes = std::fs::read(path).map_err(io)?;
        let rel = path
            .strip_prefix(dir)
            .map_or_else(|_| path.display().to_string(), |r| r.display().to_string());
        out.insert(rel, (mode, bytes));
    }
    Ok(out)
}

/// The first file (in path order) that differs between two outputs, and how.
pub fn compare_dirs(old: &Path, fresh: &Path) -> Result<Option<(String, String)>, VerifyError> {
    let a = files(old)?;
    let b = files(fresh)?;
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let detail = match (a.get(name), b.get(name)) {
            (Some(_), None) => "in the store but not in the fresh build".to_string(),
            (None, Some(_)) => "in the fresh build but not in the store".to_string(),
            (Some(x), Some(y)) if x == y => continue,
            (Some((ma, ba)), Some((mb, bb))) if ma != mb && ba == bb => {
                format!("mode {ma:04o} in the store, {mb:04o} fresh")
            }
            (Some((ma, ba)), Some((_, bb))) => describe(name, *ma, ba, bb),
            (None, None) => continue,
        };
        return Ok(Some((name.clone(), detail)));
    }
    Ok(None)
}

/// How two versions of one file differ, without showing a secret's bytes.
fn describe(name: &str, mode: u32, old: &[u8], fresh: &[u8]) -> String {
    let offset = old
        .iter()
        .zip(fresh)
        .position(|(x, y)| x != y)
        .unwrap_or(old.len().min(fresh.len()));
    let sizes = format!("{} bytes in the store, {} fresh", old.len(), fresh.len());
    if name.ends_with(".tar.gz") {
        let inner = match (read_bundle(old), read_bundle(fresh)) {
            (Ok((ra, _)), Ok((rb, _))) => match first_difference(&ra, &rb) {
                Some(e) => format!("first differing member: {e}"),
                None => "same members, different compressed bytes".to_string(),
            },
            (Err(e), _) => format!("the store's bundle is unreadable: {e}"),
            (_, Err(e)) => format!("the fresh bundle is unreadable: {e}"),
        };
        return format!("{inner} (first differing byte at offset {offset}; {sizes})");
    }
    if mode & 0o077 == 0 {
        return format!("content differs at byte {offset} ({sizes}; secret: not shown)");
    }
    match (std::str::from_utf8(old), std::str::from_utf8(fresh)) {
        (Ok(x), Ok(y)) => short_diff(x, y),
        _ => format!("content differs at byte {offset} ({sizes})"),
    }
}

/// A unified-style excerpt around the first differing line: two lines of context, then the store's and the
/// fresh build's lines until they agree again (at most five each).
fn short_diff(old: &str, fresh: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = fresh.lines().collect();
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let mut out = format!("--- store\n+++ fresh\n@@ line {} @@", first + 1);
    for l in &a[first.saturating_sub(2)..first] {
        out.push_str(&format!("\n {l}"));
    }
    let end = |v: &[&str]| (first + 5).min(v.len());
    for l in &a[first..end(&a)] {
        out.push_str(&format!("\n-{l}"));
    }
    for l in &b[first..end(&b)] {
        out.push_str(&format!("\n+{l}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_diff_shows_the_first_differing_lines() {
        let d = short_diff("a\nb\nc\nd\n", "a\nb\nX\nd\n");
        assert!(d.contains("@@ line 3 @@\n a\n b\n-c\n-d\n+X\n+d"), "{d}");
    }

    #[test]
    fn secrets_are_never_shown() {
        let d = describe("k.pem", 0o600, b"SECRET-ONE", b"SECRET-TWO");
        assert!(!d.contains("SECRET"), "{d}");
        assert!(d.contains("at byte 7"), "{d}");
        let d = describe("c.pem", 0o644, b"PUBLIC-ONE\n", b"PUBLIC-TWO\n");
        assert!(
            d.contains("-PUBLIC-ONE") && d.contains("+PUBLIC-TWO"),
            "{d}"
        );
    }
}
