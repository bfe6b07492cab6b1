//! The composition root: a recipe becomes one graph of derivations by asking each artifact module to plan its
//! part, in dependency order. Pure: no I/O, no store, no seed bytes (only the seed's fingerprint).

use crate::artifacts::{bundle, encryption, etcd, kubeconfig, lb, pki};
use crate::engine::graph::Graph;
use crate::engine::seed::Fingerprint;
use crate::recipe::Recipe;

pub use crate::artifacts::PlanError;
pub use crate::artifacts::registry;

/// Plans every artifact of `recipe` for the seed with fingerprint `seed`.
pub fn plan(recipe: &Recipe, seed: Fingerprint) -> Result<Graph, PlanError> {
    let mut graph = Graph::default();
    let certs = pki::plan(recipe, seed, &mut graph)?;
    kubeconfig::plan(recipe, &certs, &mut graph)?;
    encryption::plan(recipe, seed, &mut graph)?;
    lb::plan(recipe, &mut graph)?;
    let etcd_segment = etcd::plan(recipe, &mut graph)?;
    bundle::plan(recipe, etcd_segment, &mut graph)?;
    // Derivations are found by name (inputs of overlays, check): names must be unique.
    if let Some(clash) = graph.name_clash() {
        return Err(PlanError::NameClash(clash.to_string()));
    }
    Ok(graph)
}
