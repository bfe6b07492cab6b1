//! hardway: a Nix-style reproducible build of a Kubernetes-the-hard-way cluster.
//!
//! Data flows one way: [`recipe`] → [`plan`] (a graph of [`derivation`]s) → [`store`] → bundles → push.

pub mod build;
pub mod cli;
pub mod derivation;
pub mod encryption;
pub mod keys;
pub mod nginx;
pub mod plan;
pub mod recipe;
pub mod seed;
pub mod store;
pub mod yaml;
pub mod pki;
pub mod kubeconfig;
pub mod overlay;
pub mod bundle;
pub mod check;
