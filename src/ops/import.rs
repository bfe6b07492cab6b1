//! `hardway import`: checks a signed export archive completely — signature, then every member's name, mode,
//! size and SHA-256 against the signed manifest, no member missing or extra, every store path's derivation
//! and output hash — while staging it inside the store's `.tmp`. Only a [`Staged`] archive that passed every
//! check can be committed, which substitutes its store paths (`Store::substitute`). There is no "warn and
//! continue": the first problem refuses the archive and names the member, and nothing has entered the store.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::engine::store::{Checked, Outcome, Recorded, Store, StoreError, check_staged};
use crate::formats::export::{self, Entry, ExportFormatError, ExportManifest, MANIFEST, SIGNATURE};
use crate::keys::sign::{PublicKey, SignError};

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("unsigned or not a hardway export: the first member is {0:?}, not MANIFEST")]
    NoManifest(String),
    #[error("unsigned archive: the member after MANIFEST is {0:?}, not SIGNATURE")]
    Unsigned(String),
    #[error("SIGNATURE: {0}")]
    Signature(#[source] SignError),
    #[error("member {member:?}: {reason}")]
    Member { member: String, reason: String },
    #[error(transparent)]
    Format(#[from] ExportFormatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn member_err(member: &str, reason: impl Into<String>) -> ImportError {
    ImportError::Member {
        member: member.to_string(),
        reason: reason.into(),
    }
}

/// An archive that passed every check, staged in the store's `.tmp` (removed when dropped).
pub struct Staged {
    dir: tempfile::TempDir,
    pub manifest: ExportManifest,
    /// Store paths, checked, by name.
    paths: BTreeMap<String, Checked>,
}

/// The biggest MANIFEST or SIGNATURE read into memory.
const MAX_TEXT: u64 = 16 << 20;

fn read_text(e: Entry<'_>) -> Result<Vec<u8>, ImportError> {
    if e.size > MAX_TEXT {
        return Err(member_err(&e.path, "too large"));
    }
    let mut v = Vec::new();
    e.data
        .take(MAX_TEXT)
        .read_to_end(&mut v)
        .map_err(ExportFormatError::Read)?;
    Ok(v)
}

/// Reads and checks the whole archive against `key`, staging its members under the store's `.tmp`.
pub fn stage(archive: impl Read, key: &PublicKey, store: &Store) -> Result<Staged, ImportError> {
    let tmp_root = store.root().join(".tmp");
    let dir = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(&tmp_root)
        .map_err(|source| ImportError::Io {
            path: tmp_root.clone(),
            source,
        })?;
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut manifest: Option<ExportManifest> = None;
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut index = 0usize;
    export::read(archive, |e| -> Result<(), ImportError> {
        index += 1;
        match index {
            1 if e.path == MANIFEST => {
                manifest_bytes = Some(read_text(e)?);
                Ok(())
            }
            1 => Err(ImportError::NoManifest(e.path)),
            2 if e.path == SIGNATURE => {
                let sig = String::from_utf8(read_text(e)?)
                    .map_err(|_| member_err(SIGNATURE, "not text"))?;
                let bytes = manifest_bytes.as_deref().unwrap_or_default();
                key.verify(bytes, sig.trim_end())
                    .map_err(ImportError::Signature)?;
                let text =
                    std::str::from_utf8(bytes).map_err(|_| member_err(MANIFEST, "not UTF-8"))?;
                let m = ExportManifest::parse(text)?;
                if m.key != key.name {
                    return Err(member_err(
                        MANIFEST,
                        format!("names key {:?}, not {:?}", m.key, key.name),
                    ));
                }
                manifest = Some(m);
                Ok(())
            }
            2 => Err(ImportError::Unsigned(e.path)),
            _ => {
                let m = manifest
                    .as_ref()
                    .ok_or_else(|| ImportError::Unsigned(e.path.clone()))?;
                let listed = m
                    .members
                    .binary_search_by(|x| x.path.as_str().cmp(e.path.as_str()))
                    .map(|i| &m.members[i])
                    .map_err(|_| {
                        member_err(
                            &e.path,
                            "not listed in the signed MANIFEST (an extra member)",
                        )
                    })?;
                if seen.insert(e.path.clone(), ()).is_some() {
                    return Err(member_err(&e.path, "present twice"));
                }
                if e.mode != listed.mode {
                    return Err(member_err(
                        &e.path,
                        format!(
                            "mode {:04o}, the signed MANIFEST says {:04o}",
                            e.mode, listed.mode
                        ),
                    ));
                }
                if e.size != listed.size {
                    return Err(member_err(
                        &e.path,
                        format!("{} bytes, the signed MANIFEST says {}", e.size, listed.size),
                    ));
                }
                let got = write_member(dir.path(), &e.path, listed.mode, e.data)?;
                if got != listed.sha256 {
                    return Err(member_err(
                        &e.path,
                        "its bytes differ from the signed SHA-256 (changed after signing)",
                    ));
                }
                Ok(())
            }
        }
    })?;
    let Some(manifest) = manifest else {
        return Err(match index {
            0 => ImportError::NoManifest("nothing".into()),
            _ => ImportError::Unsigned("nothing".into()),
        });
    };
    if let Some(missing) = manifest
        .members
        .iter()
        .find(|m| !seen.contains_key(&m.path))
    {
        return Err(member_err(
            &missing.path,
            "listed in the signed MANIFEST but missing from the archive",
        ));
    }
    let recipe = format!("recipe/{}", manifest.recipe);
    if !seen.contains_key(&recipe) {
        return Err(member_err(
            &recipe,
            "the recipe the MANIFEST names is not a member",
        ));
    }
    // Every store path: its sidecar, and derivation and files that match it (as the store will check again).
    let mut paths = BTreeMap::new();
    for m in &manifest.members {
        let Some(rest) = m.path.strip_prefix("store/") else {
            continue;
        };
        let name = rest.split('/').next().unwrap_or(rest);
        let name = name.strip_suffix(".drv").unwrap_or(name);
        if paths.contains_key(name) {
            continue;
        }
        let sidecar = format!("store/{name}.drv");
        let bytes = std::fs::read(dir.path().join(&sidecar))
            .map_err(|_| member_err(&m.path, format!("no {sidecar} records what it holds")))?;
        let recorded =
            Recorded::parse(&bytes).ok_or_else(|| member_err(&sidecar, "not a hardway sidecar"))?;
        let staged = dir.path().join("store").join(name);
        if !staged.is_dir() {
            return Err(member_err(&sidecar, "no files of that store path"));
        }
        paths.insert(name.to_string(), check_staged(name, recorded, &staged)?);
    }
    Ok(Staged {
        dir,
        manifest,
        paths,
    })
}

/// Streams one member into the staging directory with its mode; returns its SHA-256.
fn write_member(
    root: &Path,
    rel: &str,
    mode: u32,
    data: &mut dyn Read,
) -> Result<[u8; 32], ImportError> {
    let path = root.join(rel);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io(parent))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .map_err(io(&path))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ExportFormatError::Read(e).into()),
        };
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n]).map_err(io(&path))?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(&path))?;
    Ok(h.finalize().into())
}

impl Staged {
    /// The staged copy of a `recipe/<file>` member.
    pub fn recipe_member(&self, file: &str) -> PathBuf {
        self.dir.path().join("recipe").join(file)
    }

    /// The `recipe/` members' file names (the recipe and its lock).
    pub fn recipe_files(&self) -> Vec<String> {
        self.manifest
            .members
            .iter()
            .filter_map(|m| m.path.strip_prefix("recipe/").map(str::to_string))
            .collect()
    }

    /// The `out/` links: name → (store name, file in it).
    pub fn links(&self) -> Vec<(String, String, String)> {
        self.manifest
            .links
            .iter()
            .filter_map(|l| {
                let rest = l.target.strip_prefix("store/")?;
                let (name, file) = rest.split_once('/')?;
                Some((l.name.clone(), name.to_string(), file.to_string()))
            })
            .collect()
    }

    /// Substitutes every checked store path into `store`; returns what each did.
    pub fn commit(self, store: &Store) -> Result<Vec<(String, Outcome)>, ImportError> {
        let mut done = Vec::new();
        for (name, checked) in self.paths {
            done.push((name, store.substitute(checked)?));
        }
        // The staging directory (`self.dir`) goes now, with what substitute left (paths already here).
        Ok(done)
    }
}
