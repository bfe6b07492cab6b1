//! hardway: a Nix-style reproducible build of a Kubernetes-the-hard-way cluster.
//!
//! Layers, each using only the ones below it (docs/ARCHITECTURE.md draws them):
//! - [`cli`]: clap definitions and one file per subcommand;
//! - [`ops`]: operations on a built cluster (`check`);
//! - [`plan`]: the composition root, recipe → graph of derivations, and the registry of every builder;
//! - [`artifacts`]: one module per kind of Kubernetes artifact (its params, its planning, its builder);
//! - [`recipe`]: the validated cluster description;
//! - [`engine`]: derivations, store, seed, scheduler and the one `Builder` interface — nothing of Kubernetes;
//! - [`formats`] and [`keys`]: bytes — tar/gzip bundles, manifests, YAML, C2SP det-keygen keys.
//!
//! Data flows one way: recipe → plan → store → bundles.

pub mod artifacts;
pub mod cli;
pub mod engine;
pub mod formats;
pub mod keys;
pub mod ops;
pub mod plan;
pub mod recipe;
