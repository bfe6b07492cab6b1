//! Fixed-output derivations: a file from outside (a release tarball), keyed by its SHA-256 alone, as Nix's
//! `fetchurl`. The same bytes from any mirror, downloaded or imported by hand, are one store path.
//!
//! The derivation's parameters are the file name and the pin, never a URL. Its builder cannot make the file:
//! a source enters the store only through [`admit`], which copies a file (a finished download, or one the
//! user brought across an air gap) and checks its SHA-256 while copying; a mismatch leaves nothing behind.
//! Building a graph whose source is missing fails with the commands that bring it in.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::builder::{self, BuildContext, Builder, BuilderError};
use super::derivation::{Derivation, DerivationError};
use super::graph::Node;
use super::store::{FileMode, Outcome, OutputWriter, Store, StoreError};

/// The `fixed-output` builder.
pub struct SourceBuilder;

/// A source's identity: its file name in the store path and its SHA-256 (hex).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceParams {
    pub file: String,
    pub sha256: String,
}

impl Builder for SourceBuilder {
    const NAME: &'static str = "fixed-output";
    const VERSION: u64 = 1;
    type Params = SourceParams;

    fn build(
        &self,
        p: SourceParams,
        _ctx: &BuildContext,
        _out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        Err(BuilderError::MissingSource {
            file: p.file,
            sha256: p.sha256,
        })
    }
}

/// The derivation of the source `file` with SHA-256 `sha256`; its store path holds the one file `file`.
pub fn derivation(file: &str, sha256: &[u8; 32]) -> Result<Derivation, DerivationError> {
    builder::derivation::<SourceBuilder>(
        file,
        &SourceParams {
            file: file.to_string(),
            sha256: hex(sha256),
        },
        BTreeMap::new(),
    )
}

/// The admitted file was not the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("hash mismatch in {file}:\n  specified: sha256:{specified}\n  got:       sha256:{got}")]
pub struct SourceMismatch {
    pub file: String,
    pub specified: String,
    pub got: String,
}

/// Copies `file` into the store as the source `node` (a [`SourceBuilder`] derivation), if its SHA-256 is the
/// pin; otherwise nothing enters the store.
pub fn admit(store: &Store, node: &Node, file: &Path) -> Result<Outcome, StoreError> {
    let params: SourceParams = node
        .drv
        .params
        .deserialized()
        .map_err(|e| StoreError::Build {
            name: node.drv.name.clone(),
            source: BuilderError::Params(e.to_string()),
        })?;
    store.realise(&node.drv, &node.store_name, |out| {
        let got = hex(&out.copy_file(&params.file, file, FileMode::Public)?);
        if got == params.sha256 {
            Ok(())
        } else {
            Err(BuilderError::artifact(SourceMismatch {
                file: file.display().to_string(),
                specified: params.sha256.clone(),
                got,
            }))
        }
    })
}

pub use crate::formats::hex::hex;
