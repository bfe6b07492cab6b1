//! The one builder interface and the registry the scheduler looks builders up in.
//!
//! A [`Builder`] has a name, a version and typed parameters; `build` reads the derivation's declared inputs
//! (store paths, by role) and writes its output through an [`OutputWriter`]. The engine never names a concrete
//! builder: artifact modules implement [`Builder`] and the composition root registers them in a [`Registry`],
//! one line each. Builder errors are typed ([`BuilderError`]); the scheduler adds the derivation's name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::derivation::{Derivation, DerivationError, DrvHash};
use super::seed::{Fingerprint, Seed};
use super::store::OutputWriter;

/// A kind of build step: realises derivations whose `builder` is [`Builder::NAME`] at [`Builder::VERSION`].
pub trait Builder: Send + Sync + 'static {
    /// The builder's name in derivations (`pki.cert`, `bundle`, …).
    const NAME: &'static str;
    /// Bump whenever the output for the same parameters and inputs changes: every path it made is rebuilt.
    const VERSION: u64;
    /// The derivation's parameters, as planned.
    type Params: Serialize + DeserializeOwned;

    /// Writes the output of one derivation from its parameters and declared inputs.
    fn build(
        &self,
        params: Self::Params,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError>;
}

/// A derivation for builder `B`: its name and version come from the builder, its parameters are `B`'s type.
pub fn derivation<B: Builder>(
    name: impl Into<String>,
    params: &B::Params,
    inputs: BTreeMap<String, DrvHash>,
) -> Result<Derivation, DerivationError> {
    Derivation::new(name, B::NAME, B::VERSION, params, inputs)
}

/// What a builder sees: the seed (for purpose-bound secrets), the derivation it builds, and its declared
/// inputs' store paths by role. Nothing else of the store.
pub struct BuildContext<'a> {
    pub seed: &'a Seed,
    /// The derivation being built (its hash may feed deterministic values such as serial numbers).
    pub drv: &'a Derivation,
    pub inputs: BTreeMap<String, PathBuf>,
}

impl BuildContext<'_> {
    /// The store path of the declared input `role`.
    pub fn input(&self, role: &str) -> Result<&Path, BuilderError> {
        self.inputs
            .get(role)
            .map(PathBuf::as_path)
            .ok_or_else(|| BuilderError::MissingInput(role.to_string()))
    }

    /// Refuses to build with a seed other than the one the derivation was planned with.
    pub fn check_seed(&self, planned: &Fingerprint) -> Result<(), BuilderError> {
        if self.seed.fingerprint() == *planned {
            Ok(())
        } else {
            Err(BuilderError::WrongSeed)
        }
    }

    /// Reads a file of an input (or anything else a builder reads), naming the path on failure.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>, BuilderError> {
        std::fs::read(path).map_err(|source| BuilderError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Why a builder failed. The scheduler reports it as `building <derivation>: <this>`.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("malformed parameters: {0}")]
    Params(String),
    #[error("missing input {0:?}")]
    MissingInput(String),
    #[error("planned with another seed than the one given")]
    WrongSeed,
    #[error("no builder {name:?} version {version} is registered")]
    Unknown { name: String, version: u64 },
    #[error(
        "source {file} (sha256:{sha256}) is not in the store: fetch it with `hardway fetch RECIPE` on a \
         connected machine, or import a copy with `hardway add FILE --recipe RECIPE`"
    )]
    MissingSource { file: String, sha256: String },
    #[error("builder produced an unsafe output path {0:?}")]
    UnsafeOutput(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An artifact module's own error (each module has a typed one and converts it).
    #[error(transparent)]
    Artifact(Box<dyn std::error::Error + Send + Sync>),
}

impl BuilderError {
    /// Wraps an artifact module's typed error.
    pub fn artifact(e: impl std::error::Error + Send + Sync + 'static) -> BuilderError {
        BuilderError::Artifact(Box::new(e))
    }
}

/// A builder behind its type: decodes the parameters, then builds.
trait Erased: Send + Sync {
    fn build(&self, ctx: &BuildContext, out: &mut OutputWriter) -> Result<(), BuilderError>;
}

impl<B: Builder> Erased for B {
    fn build(&self, ctx: &BuildContext, out: &mut OutputWriter) -> Result<(), BuilderError> {
        let params: B::Params = ctx
            .drv
            .params
            .deserialized()
            .map_err(|e| BuilderError::Params(e.to_string()))?;
        Builder::build(self, params, ctx, out)
    }
}

/// Every builder the scheduler can run, by name and version.
#[derive(Default)]
pub struct Registry {
    builders: BTreeMap<(&'static str, u64), Box<dyn Erased>>,
}

/// Registering two builders under one name and version is a programming error, reported at registration.
#[derive(Debug, thiserror::Error)]
#[error("builder {name:?} version {version} is registered twice")]
pub struct DuplicateBuilder {
    pub name: &'static str,
    pub version: u64,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `builder`; fails if its name and version are taken.
    pub fn register<B: Builder>(&mut self, builder: B) -> Result<(), DuplicateBuilder> {
        let key = (B::NAME, B::VERSION);
        if self.builders.contains_key(&key) {
            return Err(DuplicateBuilder {
                name: B::NAME,
                version: B::VERSION,
            });
        }
        self.builders.insert(key, Box::new(builder));
        Ok(())
    }

    /// True when a builder for `name` at `version` is registered.
    pub fn knows(&self, name: &str, version: u64) -> bool {
        self.builders
            .keys()
            .any(|(n, v)| *n == name && *v == version)
    }

    /// Names and versions of every registered builder, sorted.
    pub fn builders(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.builders.keys().copied()
    }

    /// Runs the builder named by `ctx.drv`.
    pub fn build(&self, ctx: &BuildContext, out: &mut OutputWriter) -> Result<(), BuilderError> {
        let drv = ctx.drv;
        // The map is keyed by &'static str; look up by value without allocating a key.
        let builder = self
            .builders
            .iter()
            .find(|((n, v), _)| *n == drv.builder && *v == drv.builder_version)
            .map(|(_, b)| b)
            .ok_or_else(|| BuilderError::Unknown {
                name: drv.builder.clone(),
                version: drv.builder_version,
            })?;
        builder.build(ctx, out)
    }
}
