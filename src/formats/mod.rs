//! Pure byte formats: the deterministic tar/gzip bundle writer and its manifests, and the YAML emitter.
//! Nothing here knows of the store, recipes or Kubernetes.

pub mod bundle;
pub mod yaml;
