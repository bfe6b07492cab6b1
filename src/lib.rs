//! hardway: a Nix-style reproducible build of a Kubernetes-the-hard-way cluster.
//!
//! Data flows one way: [`recipe`] → [`plan`] (a graph of [`derivation`]s) → [`store`] → bundles → push.

pub mod build;
pub mod bundle;
pub mod check;
pub mod cli;
pub mod derivation;
pub mod encryption;
pub mod fetch;
pub mod keys;
pub mod kubeconfig;
pub mod nginx;
pub mod overlay;
pub mod pki;
pub mod plan;
pub mod recipe;
pub mod seed;
pub mod store;
pub mod yaml;
