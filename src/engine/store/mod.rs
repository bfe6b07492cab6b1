//! The content-addressed store: `store/<hash>-<name>` directories, built once, never modified.
//!
//! Layout (version 1):
//! - `<hash>-<name>/` — the output, a directory of files; present only when complete.
//! - `<hash>-<name>.drv` — sidecar: canonical CBOR `{derivation, output}` (the derivation's CBOR and the
//!   BLAKE3 hash of the output), written before the output is renamed into place.
//! - `.tmp/<hash>-<name>` — a build in progress; `.locks/<c>.lock` — serialises builders of one path across
//!   processes (32 lock files, by the first character of the hash: creating a file per path costs more than
//!   the rare wait for an unrelated path).
//! - `.stat/<hash>-<name>` — this machine's record of each file's size and mtime at commit: every reuse
//!   compares them (a stat per file, no read), so a file deleted or changed since is noticed and the path
//!   re-hashed, then rebuilt if corrupt. Local bookkeeping, not content: it is never part of an output,
//!   an export or a hash. `--check-store` re-hashes instead (catching a change that kept size and mtime).
//!   `.stat/index` caches all of them in one file, read once per build.
//!
//! Every build writes into `.tmp`, then renames: killing hardway at any moment leaves no partial store path.
//! The store directory is 0700; secret files are 0600, others 0644 or 0755, whatever the umask.

mod output;

pub use output::{FileMode, OutputWriter, hash_output};

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::builder::BuilderError;
use super::derivation::{Derivation, DrvHash};

const LAYOUT_FILE: &str = ".hardway-store";
const LAYOUT: &str = "hardway store layout 1\n";
/// The file in `.stat/` that caches every path's records.
const INDEX: &str = "index";

/// An open store.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// Re-hash every path before reusing it (`build --check-store`).
    check: bool,
    /// The size+mtime records, read once per process from `.stat/index` (shared by clones).
    stats: std::sync::Arc<StatIndex>,
}

/// `.stat/index`: every path's size+mtime records in one file, so a no-op build reads one file instead of one
/// per path. A cache of the per-path `.stat/<name>` files, which stay authoritative: a record here that does not
/// match is looked up there before the path is re-hashed.
#[derive(Debug, Default)]
struct StatIndex {
    loaded: std::sync::OnceLock<std::collections::BTreeMap<String, String>>,
    /// Records written or confirmed by this process, merged into the index by [`Store::save_stats`].
    fresh: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

/// The state of one store path against its sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathState {
    Intact,
    /// The output's files do not hash to what was recorded at commit (changed, missing or extra files).
    Corrupt,
    /// The sidecar is missing or unreadable: nothing says what the path should hold.
    NoSidecar,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a hardway store (its {LAYOUT_FILE} says {found:?}); use another --store"
    )]
    Layout { path: PathBuf, found: String },
    #[error(
        "{path} is not empty and not a hardway store (it has no {LAYOUT_FILE}): only an empty or missing \
         directory becomes a store; use another --store"
    )]
    NotAStore { path: PathBuf },
    #[error("store path {store_name} not admitted: {why}")]
    NotAdmitted { store_name: String, why: String },
    #[error("building {name}: {source}")]
    Build {
        name: String,
        #[source]
        source: BuilderError,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What realising one derivation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Built,
    Reused,
    /// The path existed but did not match its recorded hash: it was removed and built again.
    Repaired,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        // Only an empty or missing directory becomes a store: never chmod or fill someone else's directory.
        // A directory holding only the skeleton another hardway process is creating right now counts as empty.
        if root.is_dir() && !root.join(LAYOUT_FILE).exists() {
            for e in fs::read_dir(root).map_err(io_err(root))? {
                let name = e.map_err(io_err(root))?.file_name();
                let name = name.to_string_lossy();
                // `.gitignore`: a repository's placeholder that keeps the store itself out of git.
                let ours = name == ".tmp"
                    || name == ".locks"
                    || name == ".stat"
                    || name == ".gitignore"
                    || name.trim_start_matches('.').starts_with("hardway-store");
                if !ours {
                    return Err(StoreError::NotAStore {
                        path: root.to_path_buf(),
                    });
                }
            }
        }
        mkdir_private(root)?;
        let root = fs::canonicalize(root).map_err(io_err(root))?;
        // A store created by someone else keeps its mode; ours is always 0700.
        let meta = fs::metadata(&root).map_err(io_err(&root))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(io_err(&root))?;
        }
        let layout = root.join(LAYOUT_FILE);
        match fs::read_to_string(&layout) {
            Ok(found) if found == LAYOUT => {}
            Ok(found) => {
                return Err(StoreError::Layout {
                    path: root,
                    found: found.trim().to_string(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&root, &layout, LAYOUT.as_bytes())?;
            }
            Err(e) => return Err(io_err(&layout)(e)),
        }
        mkdir_private(&root.join(".tmp"))?;
        mkdir_private(&root.join(".locks"))?;
        mkdir_private(&root.join(".stat"))?;
        Ok(Store {
            root,
            check: false,
            stats: Default::default(),
        })
    }

    /// This store, re-hashing every path before it is reused (and rebuilding a corrupt one).
    pub fn checking(mut self, check: bool) -> Store {
        self.check = check;
        self
    }

    /// The store names of every complete path, sorted.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let e = e.map_err(io_err(&self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.path().is_dir() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The hash parts (`<base32>`, the store-name prefix before `-<name>`) of a path's inputs, read from its
    /// sidecar's derivation.
    pub fn references(&self, store_name: &str) -> Result<Vec<String>, StoreError> {
        let sidecar = self.root.join(format!("{store_name}.drv"));
        let bad = || io_err(&sidecar)(std::io::Error::other("not a hardway sidecar"));
        let recorded = self.recorded(store_name)?.ok_or_else(bad)?;
        let drv: ciborium::Value =
            ciborium::from_reader(recorded.derivation.as_slice()).map_err(|_| bad())?;
        let inputs = map_field(&drv, "inputs").ok_or_else(bad)?;
        let mut out = Vec::new();
        for (_, h) in inputs.as_map().ok_or_else(bad)? {
            let h: [u8; 32] = h
                .as_bytes()
                .and_then(|b| b.as_slice().try_into().ok())
                .ok_or_else(bad)?;
            out.push(DrvHash::from_bytes(h).to_base32());
        }
        Ok(out)
    }

    /// What a path's sidecar records; `None` when it is missing or not a sidecar. Other read errors are errors.
    pub fn recorded(&self, store_name: &str) -> Result<Option<Recorded>, StoreError> {
        let sidecar = self.root.join(format!("{store_name}.drv"));
        match fs::read(&sidecar) {
            Ok(b) => Ok(Recorded::parse(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&sidecar)(e)),
        }
    }

    /// Writes a path's sidecar (under its lock): it counts only once the output directory is renamed next to it.
    fn write_sidecar(
        &self,
        store_name: &str,
        derivation: &[u8],
        output: &[u8; 32],
    ) -> Result<(), StoreError> {
        let sidecar = ciborium::Value::Map(vec![
            (
                ciborium::Value::Text("derivation".into()),
                ciborium::Value::Bytes(derivation.to_vec()),
            ),
            (
                ciborium::Value::Text("output".into()),
                ciborium::Value::Bytes(output.to_vec()),
            ),
        ]);
        let path = self.root.join(format!("{store_name}.drv"));
        let mut bytes = Vec::new();
        ciborium::into_writer(&sidecar, &mut bytes)
            .map_err(|e| io_err(&path)(std::io::Error::other(e.to_string())))?;
        write_private(&path, &bytes)
    }

    /// Re-hashes a path's files and compares them with the hash its sidecar recorded.
    pub fn check_path(&self, store_name: &str) -> Result<PathState, StoreError> {
        let Some(recorded) = self.recorded(store_name)? else {
            return Ok(PathState::NoSidecar);
        };
        match hash_output(&self.path(store_name)) {
            Ok(h) if h == recorded.output => Ok(PathState::Intact),
            // An unreadable file is as good as a changed one.
            Ok(_) | Err(StoreError::Io { .. }) => Ok(PathState::Corrupt),
            Err(e) => Err(e),
        }
    }

    /// Removes a path and its sidecar (under the path's lock): it is moved aside first, so it is never seen
    /// half-deleted.
    pub fn remove(&self, store_name: &str) -> Result<(), StoreError> {
        let _lock = self.lock_for(store_name)?;
        self.remove_locked(store_name)
    }

    fn remove_locked(&self, store_name: &str) -> Result<(), StoreError> {
        let path = self.path(store_name);
        if path.exists() {
            let aside = self
                .root
                .join(".tmp")
                .join(format!("{store_name}.removed.{}", std::process::id()));
            remove_any(&aside)?;
            make_writable(&path);
            fs::rename(&path, &aside).map_err(io_err(&path))?;
            remove_any(&aside)?;
        }
        remove_any(&self.stat_path(store_name))?;
        let sidecar = self.root.join(format!("{store_name}.drv"));
        match fs::remove_file(&sidecar) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&sidecar)(e)),
        }
    }

    fn stat_path(&self, store_name: &str) -> PathBuf {
        self.root.join(".stat").join(store_name)
    }

    /// Records the size and mtime of every file under `dir` (the output about to become `store_name`).
    fn write_stat(&self, store_name: &str, dir: &Path) -> Result<(), StoreError> {
        let mut lines = Vec::new();
        for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| io_err(dir)(e.into()))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| io_err(entry.path())(e.into()))?;
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            lines.push(format!(
                "{} {} {} {}\n",
                meta.len(),
                std::os::unix::fs::MetadataExt::mtime(&meta),
                std::os::unix::fs::MetadataExt::mtime_nsec(&meta),
                rel.display()
            ));
        }
        let text = lines.concat();
        write_private(&self.stat_path(store_name), text.as_bytes())?;
        self.remember(store_name, text);
        Ok(())
    }

    fn remember(&self, store_name: &str, text: String) {
        if let Ok(mut fresh) = self.stats.fresh.lock() {
            fresh.insert(store_name.to_string(), text);
        }
    }

    fn index(&self) -> &std::collections::BTreeMap<String, String> {
        self.stats.loaded.get_or_init(|| {
            let mut map = std::collections::BTreeMap::<String, String>::new();
            if let Ok(text) = fs::read_to_string(self.root.join(".stat").join(INDEX)) {
                for line in text.lines() {
                    if let Some((name, rest)) = line.split_once(' ') {
                        let e = map.entry(name.to_string()).or_default();
                        e.push_str(rest);
                        e.push('\n');
                    }
                }
            }
            map
        })
    }

    /// Merges the records this process wrote or confirmed into `.stat/index` (a no-op when there are none), so
    /// the next build's checks read one file. Call after a build; records of paths since removed are dropped.
    pub fn save_stats(&self) -> Result<(), StoreError> {
        let fresh = match self.stats.fresh.lock() {
            Ok(f) if !f.is_empty() => f.clone(),
            _ => return Ok(()),
        };
        let mut merged = self.index().clone();
        merged.extend(fresh);
        let mut out = String::new();
        for (name, text) in &merged {
            if !self.path(name).is_dir() {
                continue;
            }
            for line in text.lines() {
                out.push_str(name);
                out.push(' ');
                out.push_str(line);
                out.push('\n');
            }
        }
        let dir = self.root.join(".stat");
        write_atomic(&dir, &dir.join(INDEX), out.as_bytes())
    }

    /// The cheap check before a reuse: every file recorded at commit still has its size and mtime. When not
    /// (or when there is no record), the path is re-hashed; intact, its record is refreshed and it is reused.
    /// Whether the path can be reused as it is: with `checking`, it re-hashes to its record; otherwise the
    /// cheap size+mtime check passes (a failing one re-hashes). What `realise` checks before building.
    pub fn reusable(&self, store_name: &str) -> Result<bool, StoreError> {
        if self.check {
            return Ok(
                self.path(store_name).is_dir() && self.check_path(store_name)? == PathState::Intact
            );
        }
        Ok(self.indexed_unchanged(store_name)
            || (self.path(store_name).is_dir() && self.unchanged(store_name)?))
    }

    fn indexed_unchanged(&self, store_name: &str) -> bool {
        let dir = self.path(store_name);
        self.index()
            .get(store_name)
            .is_some_and(|t| !t.is_empty() && t.lines().all(|l| stat_matches(&dir, l)))
    }

    fn unchanged(&self, store_name: &str) -> Result<bool, StoreError> {
        let dir = self.path(store_name);
        let matches = |text: &str| !text.is_empty() && text.lines().all(|l| stat_matches(&dir, l));
        let same = match fs::read_to_string(self.stat_path(store_name)) {
            Ok(text) if matches(&text) => {
                self.remember(store_name, text);
                true
            }
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(&self.stat_path(store_name))(e)),
        };
        if same {
            return Ok(true);
        }
        if self.check_path(store_name)? != PathState::Intact {
            return Ok(false);
        }
        self.write_stat(store_name, &dir)?;
        Ok(true)
    }

    /// Adds a path made elsewhere (an import, as Nix substitutes from a cache), once [`check_staged`] has
    /// checked it. A path already here and intact is kept (the staged copy is discarded); a corrupt one is
    /// replaced.
    pub fn substitute(&self, checked: Checked) -> Result<Outcome, StoreError> {
        let Checked {
            store_name,
            recorded,
            dir,
        } = checked;
        let final_path = self.path(&store_name);
        let _lock = self.lock_for(&store_name)?;
        let mut outcome = Outcome::Built;
        if final_path.is_dir() {
            if self.check_path(&store_name)? == PathState::Intact {
                return Ok(Outcome::Reused);
            }
            self.remove_locked(&store_name)?;
            outcome = Outcome::Repaired;
        }
        self.write_sidecar(&store_name, &recorded.derivation, &recorded.output)?;
        self.write_stat(&store_name, &dir)?;
        fs::rename(&dir, &final_path).map_err(io_err(&final_path))?;
        Ok(outcome)
    }

    fn lock_for(&self, store_name: &str) -> Result<fs::File, StoreError> {
        let stripe = store_name.chars().next().unwrap_or('0');
        let lock_path = self.root.join(".locks").join(format!("{stripe}.lock"));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        Ok(lock)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `drv`'s output lives (whether or not it is built).
    pub fn path(&self, store_name: &str) -> PathBuf {
        self.root.join(store_name)
    }

    pub fn is_built(&self, store_name: &str) -> bool {
        self.path(store_name).is_dir()
    }

    /// Realises `drv` unless its path exists: `build` fills an [`OutputWriter`] in a temporary directory,
    /// which becomes the store path only once complete.
    pub fn realise(
        &self,
        drv: &Derivation,
        store_name: &str,
        build: impl FnOnce(&mut OutputWriter) -> Result<(), BuilderError>,
    ) -> Result<Outcome, StoreError> {
        // The common case of a no-op build: the index's records match the files (which implies the path).
        if !self.check && self.indexed_unchanged(store_name) {
            return Ok(Outcome::Reused);
        }
        let final_path = self.path(store_name);
        let mut repaired = false;
        if final_path.is_dir() {
            let intact = if self.check {
                self.check_path(store_name)? == PathState::Intact
            } else {
                self.unchanged(store_name)?
            };
            if intact {
                return Ok(Outcome::Reused);
            }
            // Corrupt: never reused. Removed under the lock (below), then built again.
            repaired = true;
        }
        // The store name starts with the hash: the same stripe as the derivation's.
        let lock = self.lock_for(store_name)?;
        // Someone else may have finished (or repaired) it while we waited.
        if repaired && final_path.is_dir() && self.check_path(store_name)? != PathState::Intact {
            self.remove_locked(store_name)?;
        }
        if final_path.is_dir() {
            return Ok(Outcome::Reused);
        }
        let tmp = self.root.join(".tmp").join(store_name);
        // Holding the lock, any leftover here is from a builder that died: discard it.
        remove_any(&tmp)?;
        mkdir_private(&tmp)?;
        let mut writer = OutputWriter::new(tmp.clone());
        if let Err(source) = build(&mut writer) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(StoreError::Build {
                name: drv.name.clone(),
                source,
            });
        }
        let output_hash = writer.finish()?;
        self.write_sidecar(store_name, &drv.to_cbor(), &output_hash)?;
        self.write_stat(store_name, &tmp)?;
        fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
        drop(lock);
        Ok(if repaired {
            Outcome::Repaired
        } else {
            Outcome::Built
        })
    }
}

/// What a sidecar records of a path.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The derivation's canonical CBOR.
    pub derivation: Vec<u8>,
    /// The BLAKE3 output hash at commit.
    pub output: [u8; 32],
}

/// A path made elsewhere that [`check_staged`] checked: the only thing [`Store::substitute`] takes.
#[derive(Debug)]
pub struct Checked {
    store_name: String,
    recorded: Recorded,
    dir: PathBuf,
}

/// Checks a path made elsewhere before it may become `store_name`: `recorded.derivation` (canonical CBOR)
/// hashes to the name, and the files under `staged` hash to `recorded.output`.
pub fn check_staged(
    store_name: &str,
    recorded: Recorded,
    staged: &Path,
) -> Result<Checked, StoreError> {
    let refuse = |why: String| StoreError::NotAdmitted {
        store_name: store_name.to_string(),
        why,
    };
    let derivation = recorded.derivation.as_slice();
    let drv: ciborium::Value = ciborium::from_reader(derivation)
        .map_err(|_| refuse("its derivation is not CBOR".into()))?;
    let name = map_field(&drv, "name")
        .and_then(|v| v.as_text().map(str::to_string))
        .ok_or_else(|| refuse("its derivation has no name".into()))?;
    let expected = format!("{}-{name}", DrvHash::of_cbor(derivation).to_base32());
    if expected != store_name {
        return Err(refuse(format!("its derivation hashes to {expected}")));
    }
    if hash_output(staged)? != recorded.output {
        return Err(refuse(
            "its files do not hash to the output recorded where it was built".into(),
        ));
    }
    Ok(Checked {
        store_name: store_name.to_string(),
        recorded,
        dir: staged.to_path_buf(),
    })
}

impl Recorded {
    /// The field `key` of the recorded derivation's parameters, if it has one.
    pub fn param(&self, key: &str) -> Option<ciborium::Value> {
        let drv: ciborium::Value = ciborium::from_reader(self.derivation.as_slice()).ok()?;
        map_field(&map_field(&drv, "params")?, key)
    }

    /// Parses a sidecar file's bytes; `None` when they are not a sidecar.
    pub fn parse(bytes: &[u8]) -> Option<Recorded> {
        let value: ciborium::Value = ciborium::from_reader(bytes).ok()?;
        let bytes_of = |k| map_field(&value, k).and_then(|v| v.as_bytes().cloned());
        Some(Recorded {
            derivation: bytes_of("derivation")?,
            output: bytes_of("output")?.as_slice().try_into().ok()?,
        })
    }
}

/// One `.stat` line (`size mtime mtime_nsec path`) against the file under `dir`.
fn stat_matches(dir: &Path, line: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut parts = line.splitn(4, ' ');
    let (Some(size), Some(sec), Some(nsec), Some(rel)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    fs::symlink_metadata(dir.join(rel)).is_ok_and(|m| {
        m.is_file()
            && size.parse() == Ok(m.len())
            && sec.parse() == Ok(m.mtime())
            && nsec.parse() == Ok(m.mtime_nsec())
    })
}

/// The value under text key `key` of a CBOR map.
fn map_field(v: &ciborium::Value, key: &str) -> Option<ciborium::Value> {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(key)))
        .map(|(_, v)| v.clone())
}

/// Creates a directory with mode 0700 (and its parents), independent of the umask.
pub(crate) fn mkdir_private(dir: &Path) -> Result<(), StoreError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Gives the owner rwx on every directory of a tree so that it can be removed, even where a user chmod-ed one
/// by hand (hardway's own directories are 0700 already).
fn make_writable(path: &Path) {
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        if e.file_type().is_dir()
            && let Ok(m) = e.metadata()
        {
            let mode = m.permissions().mode();
            if mode & 0o700 != 0o700 {
                let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(mode | 0o700));
            }
        }
    }
}

fn remove_any(path: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `bytes` to `path` with mode 0600, replacing what was there.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    std::io::Write::write_all(&mut f, bytes).map_err(io_err(path))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(path))
}

/// Writes `bytes` to `path` through a temporary file in `dir` and a rename.
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn recorded_output_hash_equals_a_fresh_hash_of_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s")).expect("store");
        let drv = Derivation::new("x", "test", 1, &1u8, BTreeMap::new()).expect("drv");
        let name = drv.store_name();
        let outcome = store
            .realise(&drv, &name, |out| {
                out.file("b.txt", b"bee", FileMode::Public)?;
                out.file("sub/a.key", b"secret", FileMode::Secret)
            })
            .expect("realise");
        assert_eq!(outcome, Outcome::Built);
        let sidecar = fs::read(store.root().join(format!("{name}.drv"))).expect("sidecar");
        let v: ciborium::Value = ciborium::from_reader(sidecar.as_slice()).expect("cbor");
        let recorded = v
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("output")))
            .and_then(|(_, v)| v.as_bytes().cloned())
            .expect("output hash");
        assert_eq!(
            recorded,
            hash_output(&store.path(&name)).expect("hash").to_vec()
        );
        // A second realise reuses the path without calling the builder.
        let again = store
            .realise(&drv, &name, |_| Err(BuilderError::WrongSeed))
            .expect("reuse");
        assert_eq!(again, Outcome::Reused);
        let mode = fs::metadata(store.path(&name).join("sub/a.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
