//! Pure byte formats: the deterministic tar/gzip bundle writer and its manifests, the signed export archive
//! (`export`), and the YAML emitter.
//! Nothing here knows of the store, recipes or Kubernetes.

pub mod bundle;
pub mod export;
pub mod hex;
pub mod yaml;
