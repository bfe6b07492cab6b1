//! Writing a store output: files with explicit modes, and the output's content hash.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{StoreError, io_err, mkdir_private};
use crate::engine::builder::BuilderError;

const OUTPUT_CONTEXT: &str = "hardway 2026-11 output hash v1";

/// A file's mode in the store; the umask never matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileMode {
    /// 0600: keys and anything that holds one.
    Secret,
    /// 0644.
    Public,
    /// 0755.
    Executable,
}

impl FileMode {
    pub fn bits(self) -> u32 {
        match self {
            FileMode::Secret => 0o600,
            FileMode::Public => 0o644,
            FileMode::Executable => 0o755,
        }
    }

    /// The class of a file's mode bits: any execute bit, else any group/other read bit, else secret.
    pub fn from_bits(bits: u32) -> FileMode {
        if bits & 0o111 != 0 {
            FileMode::Executable
        } else if bits & 0o044 != 0 {
            FileMode::Public
        } else {
            FileMode::Secret
        }
    }
}

/// Collects a builder's files in the temporary directory of a build, hashing them as they are written.
pub struct OutputWriter {
    dir: PathBuf,
    written: Vec<(String, FileMode, u64, [u8; 32])>,
}

impl OutputWriter {
    pub(super) fn new(dir: PathBuf) -> OutputWriter {
        OutputWriter {
            dir,
            written: Vec::new(),
        }
    }

    /// Writes one file (relative path, `/`-separated, no `..`) with an explicit mode.
    pub fn file(&mut self, rel: &str, bytes: &[u8], mode: FileMode) -> Result<(), BuilderError> {
        let path = self.prepare(rel)?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode.bits())
                .open(&path)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.set_permissions(fs::Permissions::from_mode(mode.bits()))
        };
        write().map_err(|source| BuilderError::Io {
            path: path.clone(),
            source,
        })?;
        self.written.push((
            rel.to_string(),
            mode,
            bytes.len() as u64,
            *blake3::hash(bytes).as_bytes(),
        ));
        Ok(())
    }

    /// Checks a relative output path and makes its parent directory; returns the absolute path.
    fn prepare(&mut self, rel: &str) -> Result<PathBuf, BuilderError> {
        if rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(BuilderError::UnsafeOutput(rel.to_string()));
        }
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent().filter(|p| *p != self.dir) {
            mkdir_private(parent).map_err(|e| match e {
                StoreError::Io { path, source } => BuilderError::Io { path, source },
                other => BuilderError::artifact(other),
            })?;
        }
        Ok(path)
    }

    /// Copies the file at `source` into the output (streamed, for large files), with an explicit mode.
    /// Returns the SHA-256 of the bytes copied (what fixed-output derivations are checked by).
    pub fn copy_file(
        &mut self,
        rel: &str,
        source: &Path,
        mode: FileMode,
    ) -> Result<[u8; 32], BuilderError> {
        use sha2::Digest as _;
        let path = self.prepare(rel)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuilderError::Io { path, source }
        };
        let mut from = fs::File::open(source).map_err(io(source))?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.bits())
            .open(&path)
            .map_err(io(&path))?;
        let mut hasher = blake3::Hasher::new();
        let mut sha256 = sha2::Sha256::new();
        let mut len = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match std::io::Read::read(&mut from, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(source)(e)),
            };
            hasher.update(&buf[..n]);
            sha256.update(&buf[..n]);
            std::io::Write::write_all(&mut to, &buf[..n]).map_err(io(&path))?;
            len += n as u64;
        }
        to.set_permissions(fs::Permissions::from_mode(mode.bits()))
            .map_err(io(&path))?;
        self.written
            .push((rel.to_string(), mode, len, *hasher.finalize().as_bytes()));
        Ok(sha256.finalize().into())
    }

    /// The output's hash, from what was written (no second read). Directories are 0700 inside a 0700 store.
    pub(super) fn finish(mut self) -> Result<[u8; 32], StoreError> {
        self.written.sort();
        Ok(combine(&self.written))
    }
}

/// BLAKE3 (derive-key) over every file in path order: its path, mode class, length and BLAKE3.
fn combine(files: &[(String, FileMode, u64, [u8; 32])]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(OUTPUT_CONTEXT);
    for (rel, mode, len, digest) in files {
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&mode.bits().to_le_bytes());
        h.update(&len.to_le_bytes());
        h.update(digest);
    }
    *h.finalize().as_bytes()
}

/// The hash of an output directory as it is on disk; equals what [`OutputWriter`] recorded when intact.
pub fn hash_output(dir: &Path) -> Result<[u8; 32], StoreError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            io_err(&path)(e.into())
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let path = entry.path();
        let rel = path
            .strip_prefix(dir)
            .map_err(|_| io_err(path)(std::io::Error::other("outside the output")))?
            .to_string_lossy()
            .into_owned();
        let meta = fs::metadata(path).map_err(io_err(path))?;
        let bytes = fs::read(path).map_err(io_err(path))?;
        files.push((
            rel,
            FileMode::from_bits(meta.permissions().mode()),
            bytes.len() as u64,
            *blake3::hash(&bytes).as_bytes(),
        ));
    }
    files.sort();
    Ok(combine(&files))
}
