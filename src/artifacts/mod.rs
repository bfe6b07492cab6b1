//! The Kubernetes artifacts: one module per kind, each owning its parameters, how it is planned from a recipe,
//! and its [`Builder`](crate::engine::Builder).
//!
//! Adding a kind of artifact = one module here, its `plan` call in [`crate::plan`], and one line in
//! [`registry`]. The engine never changes for it.

pub mod bundle;
pub mod encryption;
pub mod etcd;
pub mod host_files;
pub mod kubeconfig;
pub mod lb;
pub mod pki;

use crate::engine::builder::{DuplicateBuilder, Registry};
use crate::engine::derivation::DerivationError;

/// Every builder of this layer, registered once: the scheduler finds them here by name and version.
pub fn registry() -> Result<Registry, DuplicateBuilder> {
    let mut r = Registry::new();
    r.register(pki::KeyBuilder)?;
    r.register(pki::CertBuilder)?;
    r.register(kubeconfig::KubeconfigBuilder)?;
    r.register(encryption::EncryptionConfigBuilder)?;
    r.register(lb::NginxStreamBuilder)?;
    r.register(host_files::OverlayBuilder)?;
    r.register(bundle::BundleBuilder)?;
    r.register(crate::engine::source::SourceBuilder)?;
    r.register(etcd::UnpackBuilder)?;
    r.register(etcd::SegmentBuilder)?;
    r.register(etcd::UnitBuilder)?;
    Ok(r)
}

/// A file the recipe pins by SHA-256 and fetches from mirrors (a fixed-output source).
#[derive(Clone, Debug)]
pub struct PinnedSource {
    /// The file name (and the source derivation's name).
    pub file: String,
    /// `None`: the recipe leaves the pin empty.
    pub sha256: Option<[u8; 32]>,
    pub urls: Vec<String>,
    /// The recipe field that pins it and its 1-based line.
    pub field: &'static str,
    pub line: usize,
}

impl PinnedSource {
    /// The source's derivation (a placeholder pin of zeros when the recipe has none).
    pub fn derivation(&self) -> Result<crate::engine::derivation::Derivation, DerivationError> {
        crate::engine::source::derivation(&self.file, &self.sha256.unwrap_or([0; 32]))
    }
}

/// Every pinned source of `recipe`.
pub fn sources(recipe: &crate::recipe::Recipe) -> Vec<PinnedSource> {
    recipe
        .etcd
        .iter()
        .map(|e| PinnedSource {
            file: e.tarball(),
            sha256: e.sha256,
            urls: e.urls.clone(),
            field: "etcd.sha256",
            line: e.sha256_line,
        })
        .collect()
}

/// Why a recipe could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Derivation(#[from] DerivationError),
    #[error(
        "two artifacts would both be named {0:?}: rename the host or user whose name makes it (names like \
         <host>-key, <host>-kubeconfig, <host>-overlay, <host>-bundle, user-<name> and the built-in certificate \
         names are taken)"
    )]
    NameClash(String),
    #[error("host {host}: its overlay needs {input:?}, which the plan does not make")]
    MissingInput { host: String, input: String },
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builder_is_registered_once() {
        let r = super::registry().expect("no duplicate builder");
        let names: Vec<_> = r.builders().map(|(n, _)| n).collect();
        for n in [
            "bundle",
            "encryption-config",
            "kubeconfig",
            "nginx-stream",
            "overlay",
            "pki.cert",
            "pki.key",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }
}
