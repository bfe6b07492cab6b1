//! Writing a store output: files with explicit modes, and the output's content hash.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{StoreError, io_err, mkdir_private};

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

    fn from_bits(bits: u32) -> FileMode {
        if bits & 0o111 != 0 {
            FileMode::Executable
        } else if bits & 0o044 != 0 {
            FileMode::Public
        } else {
            FileMode::Secret
        }
    }
}

/// Collects a builder's files in the temporary directory of a build.
pub struct OutputWriter {
    dir: PathBuf,
}

impl OutputWriter {
    pub(super) fn new(dir: PathBuf) -> OutputWriter {
        OutputWriter { dir }
    }

    /// Writes one file (relative path, `/`-separated, no `..`) with an explicit mode.
    pub fn file(&mut self, rel: &str, bytes: &[u8], mode: FileMode) -> Result<(), String> {
        if rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!("builder produced an unsafe output path {rel:?}"));
        }
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            mkdir_private(parent).map_err(|e| e.to_string())?;
        }
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode.bits())
                .open(&path)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.set_permissions(fs::Permissions::from_mode(mode.bits()))
        };
        write().map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Hashes what was written. Directories end up 0700 inside a 0700 store.
    pub(super) fn finish(self) -> Result<[u8; 32], StoreError> {
        hash_output(&self.dir)
    }
}

/// BLAKE3 of an output directory: every file in path order with its mode class, length and bytes.
pub fn hash_output(dir: &Path) -> Result<[u8; 32], StoreError> {
    let mut files = Vec::new();
    collect(dir, "", &mut files)?;
    files.sort();
    let mut h = blake3::Hasher::new_derive_key(OUTPUT_CONTEXT);
    for (rel, path) in files {
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        let mode = FileMode::from_bits(meta.permissions().mode());
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&mode.bits().to_le_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(*h.finalize().as_bytes())
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if entry.file_type().map_err(io_err(&path))?.is_dir() {
            collect(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}
