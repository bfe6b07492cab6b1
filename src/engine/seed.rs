//! The cluster's secret seed: 32 bytes from the OS RNG, the root of every key and secret.
//!
//! The seed never leaves this module in a form that could be logged: derivations see its [`Fingerprint`], and
//! builders ask for purpose-bound secrets with [`Seed::derive`].

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Length of a seed file, in bytes.
pub const SEED_LEN: usize = 32;

const FINGERPRINT_CONTEXT: &str = "hardway 2026-11 seed fingerprint v1";
const SECRET_CONTEXT: &str = "hardway 2026-11 secret v1";

/// The secret seed. No `Debug` output reveals it; it is wiped on drop.
pub struct Seed([u8; SEED_LEN]);

/// A public, one-way identifier of a seed, safe to put in derivations and logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A fingerprint recorded elsewhere (a lock's 64 hex digits): lets `show` and `check` plan without the seed.
    pub fn from_bytes(bytes: [u8; 32]) -> Fingerprint {
        Fingerprint(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Fingerprint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("32 bytes of seed fingerprint")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Fingerprint, E> {
                v.try_into()
                    .map(Fingerprint)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(
        "no seed at {0}: run `hardway init` to make one (or point --seed-file / HARDWAY_SEED_FILE at yours)"
    )]
    Missing(PathBuf),
    #[error("cannot read seed {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "seed {path} is {len} bytes; a seed is exactly {SEED_LEN} bytes (made by `hardway init`)"
    )]
    WrongLength { path: PathBuf, len: u64 },
    #[error(
        "seed {path} is readable by group or others (mode {mode:04o}); it is the root of every key: chmod 600 it"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("seed {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("refusing to overwrite the existing seed {0}: it is the root of every key")]
    Exists(PathBuf),
    #[error("cannot create seed {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Random(std::io::Error),
}

impl Seed {
    /// A seed from known bytes (tests, fixtures).
    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Seed {
        Seed(bytes)
    }

    /// Reads a seed, refusing the wrong length or a mode that lets group or others read it.
    pub fn load(path: &Path) -> Result<Seed, SeedError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SeedError::Missing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(SeedError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if !meta.is_file() {
            return Err(SeedError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SeedError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        if meta.len() != SEED_LEN as u64 {
            return Err(SeedError::WrongLength {
                path: path.to_path_buf(),
                len: meta.len(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| SeedError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let arr: [u8; SEED_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SeedError::WrongLength {
                    path: path.to_path_buf(),
                    len: bytes.len() as u64,
                })?;
        Ok(Seed(arr))
    }

    /// Makes a new seed from the OS RNG at `path` (mode 0600), never overwriting an existing file.
    pub fn create(path: &Path) -> Result<Seed, SeedError> {
        let mut bytes = [0u8; SEED_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .map_err(SeedError::Random)?;
        let create_err = |source| SeedError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The seed's directory is private too (secrets/ by default).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(create_err)?;
        }
        // Write to a private temporary name, then link it into place: no half-written seed, no overwrite.
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match result {
            Ok(()) => Ok(Seed(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(SeedError::Exists(path.to_path_buf()))
            }
            Err(e) => Err(create_err(e)),
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(blake3::derive_key(FINGERPRINT_CONTEXT, &self.0))
    }

    /// A 32-byte secret bound to `purpose` (canonical CBOR naming what the secret is for).
    /// Different purposes give independent secrets; the same purpose always gives the same one.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key(SECRET_CONTEXT);
        h.update(&self.0);
        h.update(purpose);
        *h.finalize().as_bytes()
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the memory is reused.
        for b in self.0.iter_mut() {
            // SAFETY-free volatile-ish wipe: black_box keeps the compiler from dropping the stores.
            *std::hint::black_box(b) = 0;
        }
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed(fingerprint {})", self.fingerprint())
    }
}
