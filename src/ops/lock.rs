//! The lock file: what a build of a recipe produced, next to the recipe (`recipes/seed.toml` →
//! `recipes/seed.lock`), meant to be committed. `build --locked` and `verify` compare a build with it.
//!
//! Text form, one fact a line, sorted within each kind (a pure function of the build):
//! ```text
//! # hardway lock v1: commit this file; `hardway build --locked` and `hardway verify` compare builds with it.
//! hardway 0.1.0
//! seed-fingerprint <64 hex>
//! builder <name> <version>
//! source <file> sha256 <64 hex>
//! bundle <host> sha256 <64 hex> blake3 <64 hex> size <bytes>
//! ```
//! The hardway version is informative: a different version alone is not a difference (builder versions are).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::artifacts::bundle::{host_of, manifest_file};
use crate::engine::builder::Builder;
use crate::engine::graph::Graph;
use crate::engine::seed::Fingerprint;
use crate::engine::source::{SourceBuilder, SourceParams, hex};
use crate::engine::store::Store;
use crate::formats::bundle::{BundleDigest, Manifest};
use crate::formats::hex::unhex;

const MAGIC: &str = "# hardway lock v1: commit this file; `hardway build --locked` and `hardway verify` compare builds with it.";

/// What a build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub hardway: String,
    pub seed: String,
    pub builders: BTreeMap<String, u64>,
    pub sources: BTreeMap<String, String>,
    pub bundles: BTreeMap<String, BundleDigest>,
}

/// Why a lock could not be made, read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
}

/// `recipes/seed.toml` → `recipes/seed.lock`.
pub fn lock_path(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock")
}

impl Lock {
    /// The lock of `graph` as built in `store` (every bundle must be built).
    pub fn of(graph: &Graph, store: &Store, seed: Fingerprint) -> Result<Lock, LockError> {
        let mut builders = BTreeMap::new();
        let mut sources = BTreeMap::new();
        let mut bundles = BTreeMap::new();
        for node in &graph.nodes {
            builders.insert(node.drv.builder.clone(), node.drv.builder_version);
            if node.drv.builder == SourceBuilder::NAME
                && let Ok(p) = node.drv.params.deserialized::<SourceParams>()
            {
                sources.insert(p.file, p.sha256);
            }
            // A bundle derivation is named `<host>-bundle` (its parameters are not decoded: this runs on every
            // build, also a no-op one).
            if let Some(host) = host_of(node) {
                let path = store.path(&node.store_name).join(manifest_file(host));
                let text = std::fs::read_to_string(&path).map_err(|source| LockError::Io {
                    path: path.clone(),
                    source,
                })?;
                let m = Manifest::parse_head(&text).map_err(|e| LockError::Manifest {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                bundles.insert(host.to_string(), m.bundle);
            }
        }
        Ok(Lock {
            hardway: env!("CARGO_PKG_VERSION").to_string(),
            seed: hex(seed.as_bytes()),
            builders,
            sources,
            bundles,
        })
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nhardway {}\nseed-fingerprint {}\n",
            self.hardway, self.seed
        );
        for (b, v) in &self.builders {
            s.push_str(&format!("builder {b} {v}\n"));
        }
        for (f, h) in &self.sources {
            s.push_str(&format!("source {f} sha256 {h}\n"));
        }
        for (host, d) in &self.bundles {
            s.push_str(&format!(
                "bundle {host} sha256 {} blake3 {} size {}\n",
                hex(&d.sha256),
                hex(&d.blake3),
                d.size
            ));
        }
        s
    }

    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        let err = |line: usize, message: &str| LockError::Parse {
            path: path.to_path_buf(),
            line,
            message: message.to_string(),
        };
        let mut lock = Lock {
            hardway: String::new(),
            seed: String::new(),
            builders: BTreeMap::new(),
            sources: BTreeMap::new(),
            bundles: BTreeMap::new(),
        };
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(MAGIC) {
            return Err(err(1, "not a hardway lock v1 (first line)"));
        }
        for (i, line) in lines {
            let n = i + 1;
            let f: Vec<&str> = line.split(' ').collect();
            let hex64 = |s: &str| crate::formats::hex::unhex::<32>(s).is_some();
            match f.as_slice() {
                ["hardway", v] => lock.hardway = v.to_string(),
                ["seed-fingerprint", h] if hex64(h) => lock.seed = h.to_string(),
                ["builder", b, v] => {
                    let v = v
                        .parse()
                        .map_err(|_| err(n, "builder version is not a number"))?;
                    lock.builders.insert(b.to_string(), v);
                }
                ["source", file, "sha256", h] if hex64(h) => {
                    lock.sources.insert(file.to_string(), h.to_string());
                }
                ["bundle", host, "sha256", s, "blake3", b, "size", size] => {
                    let (Some(sha256), Some(blake3)) = (unhex::<32>(s), unhex::<32>(b)) else {
                        return Err(err(n, "a bundle hash is not 64 lowercase hex digits"));
                    };
                    let size = size.parse().map_err(|_| err(n, "size is not a number"))?;
                    lock.bundles.insert(
                        host.to_string(),
                        BundleDigest {
                            size,
                            sha256,
                            blake3,
                        },
                    );
                }
                _ => return Err(err(n, &format!("unexpected line {line:?}"))),
            }
        }
        Ok(lock)
    }

    /// Written through a temporary file and a rename: never half a lock.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        crate::engine::atomic::write_file(path, self.render().as_bytes(), 0o644, true).map_err(io)
    }

    /// Every way `other` (a new build) differs from this lock, one line each; empty when they agree.
    pub fn differences(&self, other: &Lock) -> Vec<String> {
        let mut out = Vec::new();
        if self.seed != other.seed {
            out.push(format!(
                "seed fingerprint: locked {}, built {}",
                &self.seed[..16.min(self.seed.len())],
                &other.seed[..16.min(other.seed.len())]
            ));
        }
        diff_maps(&mut out, "builder", &self.builders, &other.builders, |v| {
            v.to_string()
        });
        diff_maps(&mut out, "source", &self.sources, &other.sources, |h| {
            format!("sha256 {h}")
        });
        diff_maps(&mut out, "bundle", &self.bundles, &other.bundles, |d| {
            format!("sha256 {}", hex(&d.sha256))
        });
        out
    }
}

fn diff_maps<V: PartialEq>(
    out: &mut Vec<String>,
    what: &str,
    locked: &BTreeMap<String, V>,
    built: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
) {
    for (k, v) in locked {
        match built.get(k) {
            None => out.push(format!("{what} {k}: locked ({}), not built", show(v))),
            Some(b) if b != v => {
                out.push(format!("{what} {k}: locked {}, built {}", show(v), show(b)))
            }
            Some(_) => {}
        }
    }
    for (k, v) in built {
        if !locked.contains_key(k) {
            out.push(format!("{what} {k}: built ({}), not in the lock", show(v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_differences() {
        let lock = Lock {
            hardway: "0.1.0".into(),
            seed: "ab".repeat(32),
            builders: BTreeMap::from([("bundle".into(), 1), ("pki.cert".into(), 1)]),
            sources: BTreeMap::from([("etcd.tar.gz".into(), "cd".repeat(32))]),
            bundles: BTreeMap::from([(
                "node1".into(),
                BundleDigest {
                    size: 10,
                    sha256: [1; 32],
                    blake3: [2; 32],
                },
            )]),
        };
        let text = lock.render();
        let back = Lock::parse(&text, Path::new("x.lock")).expect("parse");
        assert_eq!(back, lock);
        assert!(lock.differences(&back).is_empty());
        let mut other = lock.clone();
        other.bundles.get_mut("node1").expect("node1").sha256 = [3; 32];
        other.builders.insert("bundle".into(), 2);
        let d = lock.differences(&other);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].starts_with("builder bundle: locked 1, built 2"),
            "{d:?}"
        );
        assert!(
            d[1].starts_with("bundle node1: locked sha256 0101"),
            "{d:?}"
        );
        let bad = text.replace("builder bundle 1", "builder bundle x");
        assert!(Lock::parse(&bad, Path::new("x.lock")).is_err());
    }
}
