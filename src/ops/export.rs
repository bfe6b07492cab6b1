//! `hardway export`: one signed archive ([`crate::formats::export`]) holding some hosts' bundle store paths
//! (with their sidecars), the pinned sources those bundles contain, the recipe and its lock, for carrying
//! across an air gap. Same build, same key: same archive bytes.
//!
//! The archive holds the hosts' private keys (they are in the bundles): it is written 0600 and must be handled
//! like the bundles themselves. The signature proves origin and integrity, it does not hide anything.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::artifacts::bundle::{bundle_file, host_of, manifest_file};
use crate::engine::builder::Builder;
use crate::engine::graph::Graph;
use crate::engine::source::SourceBuilder;
use crate::engine::store::{FileMode, PathState, Store};
use crate::formats::export::{ExportFormatError, ExportManifest, Link, Member, valid_path, write};
use crate::keys::sign::SigningKey;

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "{path:?} cannot go into an archive: names are letters, digits and . _ + - (rename the file)"
    )]
    BadName { path: String },
    #[error("{host}: no bundle of that host in the plan")]
    UnknownHost { host: String },
    #[error("{store_name} is not built: run `hardway build` first")]
    NotBuilt { store_name: String },
    #[error(
        "{store_name} is corrupt in the store (its files do not match what was recorded): run `hardway store \
         verify --repair RECIPE` before exporting"
    )]
    Corrupt { store_name: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::engine::store::StoreError),
    #[error(transparent)]
    Format(#[from] ExportFormatError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What goes into an archive.
pub struct Request<'a> {
    pub graph: &'a Graph,
    pub store: &'a Store,
    /// The recipe file (its bytes and file name go in).
    pub recipe: &'a Path,
    /// The lock's text (`recipe/<stem>.lock`).
    pub lock: &'a str,
    /// Hosts whose bundles go in, in any order (sorted in the archive); every host when empty.
    pub hosts: &'a [String],
    pub key: &'a SigningKey,
}

/// What was written.
#[derive(Debug)]
pub struct Summary {
    pub hosts: Vec<String>,
    pub members: usize,
    pub bytes: u64,
}

/// A member's bytes: a file on disk or text made here.
enum Source {
    File(PathBuf),
    Text(Vec<u8>),
}

fn member(path: String, mode: u32, source: Source) -> Result<(Member, Source), ExportError> {
    // Refused here, naming the file, rather than by the import on the far side of the air gap.
    if !valid_path(&path) {
        return Err(ExportError::BadName { path });
    }
    let (size, sha256) = match &source {
        Source::Text(t) => (t.len() as u64, sha2::Sha256::digest(t).into()),
        Source::File(p) => {
            let got = crate::engine::fetch::sha256_file(p).map_err(|e| ExportError::Io {
                path: p.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let size = std::fs::metadata(p).map_err(io(p))?.len();
            (size, got)
        }
    };
    Ok((
        Member {
            path,
            mode,
            size,
            sha256,
        },
        source,
    ))
}

/// Writes the archive to `out` (through a temporary file beside it, mode 0600); returns what went in.
pub fn export(req: &Request<'_>, out: &Path) -> Result<Summary, ExportError> {
    let bundles: Vec<(String, usize)> = req
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| host_of(n).map(|h| (h.to_string(), i)))
        .collect();
    let mut hosts: Vec<String> = if req.hosts.is_empty() {
        bundles.iter().map(|(h, _)| h.clone()).collect()
    } else {
        req.hosts.to_vec()
    };
    hosts.sort();
    hosts.dedup();
    let mut paths = BTreeSet::new();
    let mut links = Vec::new();
    for host in &hosts {
        let &(_, node) = bundles
            .iter()
            .find(|(h, _)| h == host)
            .ok_or_else(|| ExportError::UnknownHost { host: host.clone() })?;
        let store_name = &req.graph.nodes[node].store_name;
        paths.insert(node);
        for file in [bundle_file(host), manifest_file(host)] {
            links.push(Link {
                target: format!("store/{store_name}/{file}"),
                name: file,
            });
        }
        // The pinned sources this bundle contains (its closure's fixed-output derivations).
        let mut todo = vec![node];
        let mut seen = BTreeSet::new();
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            if req.graph.nodes[i].drv.builder == SourceBuilder::NAME {
                paths.insert(i);
            }
            todo.extend(req.graph.nodes[i].deps.iter().copied());
        }
    }
    let mut members = Vec::new();
    let recipe_name = req
        .recipe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !valid_path(&format!("recipe/{recipe_name}")) {
        return Err(ExportError::BadName {
            path: req.recipe.display().to_string(),
        });
    }
    let lock_name = Path::new(&recipe_name)
        .with_extension("lock")
        .to_string_lossy()
        .into_owned();
    members.push(member(
        format!("recipe/{recipe_name}"),
        0o644,
        Source::File(req.recipe.to_path_buf()),
    )?);
    members.push(member(
        format!("recipe/{lock_name}"),
        0o644,
        Source::Text(req.lock.as_bytes().to_vec()),
    )?);
    for &i in &paths {
        let name = &req.graph.nodes[i].store_name;
        match req.store.check_path(name)? {
            PathState::Intact => {}
            PathState::Corrupt => {
                return Err(ExportError::Corrupt {
                    store_name: name.clone(),
                });
            }
            PathState::NoSidecar => {
                return Err(ExportError::NotBuilt {
                    store_name: name.clone(),
                });
            }
        }
        let sidecar = req.store.root().join(format!("{name}.drv"));
        members.push(member(
            format!("store/{name}.drv"),
            0o644,
            Source::File(sidecar),
        )?);
        let dir = req.store.path(name);
        for e in walkdir::WalkDir::new(&dir).min_depth(1).sort_by_file_name() {
            let e = e.map_err(|e| io(&dir)(e.into()))?;
            if e.file_type().is_dir() {
                continue;
            }
            let meta = e.metadata().map_err(|e| io(&dir)(e.into()))?;
            let bits = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            let mode = FileMode::from_bits(bits).bits();
            let rel = e.path().strip_prefix(&dir).unwrap_or(e.path());
            members.push(member(
                format!("store/{name}/{}", rel.to_string_lossy()),
                mode,
                Source::File(e.path().to_path_buf()),
            )?);
        }
    }
    members.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let manifest = ExportManifest {
        key: req.key.public().name,
        recipe: recipe_name,
        links,
        members: members.iter().map(|(m, _)| m.clone()).collect(),
    };
    let signature = req.key.sign(manifest.render().as_bytes());
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".hardway-export-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let sources: std::collections::BTreeMap<&str, &Source> =
        members.iter().map(|(m, s)| (m.path.as_str(), s)).collect();
    let file = write(
        std::io::BufWriter::new(tmp.as_file()),
        &manifest,
        &signature,
        |m| -> std::io::Result<Box<dyn Read>> {
            match sources.get(m.path.as_str()) {
                Some(Source::File(p)) => Ok(Box::new(std::fs::File::open(p)?)),
                Some(Source::Text(t)) => Ok(Box::new(std::io::Cursor::new(t.clone()))),
                None => Err(std::io::Error::other("not a member")),
            }
        },
    )?;
    file.into_inner()
        .map_err(|e| io(out)(e.into_error()))?
        .sync_all()
        .map_err(io(out))?;
    let bytes = tmp.as_file().metadata().map_err(io(out))?.len();
    tmp.persist(out).map_err(|e| io(out)(e.error))?;
    Ok(Summary {
        hosts,
        members: manifest.members.len() + 2,
        bytes,
    })
}

/// The export signing key of a seed: Ed25519 from a purpose-bound secret of the seed, named after the seed's
/// fingerprint (`hardway-<16 hex>`), so every export of one cluster is signed by the same key.
pub fn signing_key(
    seed: &crate::engine::seed::Seed,
) -> Result<SigningKey, crate::keys::sign::SignError> {
    let text = |s: &str| ciborium::Value::Text(s.to_string());
    let purpose = ciborium::Value::Map(vec![
        (text("kind"), text("export-signing-key")),
        (text("algorithm"), text("ed25519")),
        (text("generation"), ciborium::Value::Integer(1.into())),
    ]);
    // Text and integer values only: canonical encoding cannot fail.
    let purpose =
        crate::engine::derivation::to_canonical_cbor(&purpose).expect("plain purpose map");
    let secret = zeroize::Zeroizing::new(seed.derive(&purpose));
    SigningKey::from_secret(&format!("hardway-{}", seed.fingerprint()), &secret)
}
