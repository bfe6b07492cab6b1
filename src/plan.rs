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

#[cfg(test)]
mod tests {
    use crate::recipe::Recipe;

    /// `Recipe::derivation_names` (what validation refuses clashes with) names exactly what the plan makes.
    #[test]
    fn the_recipes_derivation_names_are_the_plans() {
        let seed = include_str!("../recipes/seed.toml");
        let (without_etcd, _) = seed.split_at(seed.find("\n[etcd]").unwrap_or(seed.len()));
        let users = "\n[[pki.users]]\nname = \"alice\"\ngroups = [\"devs\"]\n\n[[pki.users]]\nname = \"bob.x\"\n";
        let kubeadm = format!("{seed}pki = \"kubeadm\"\n{users}");
        let one_master = without_etcd
            .replace(
                "[[hosts]]\nname = \"master2\"\nip = \"10.128.15.222\"\nrole = \"master\"\n",
                "",
            )
            .replace("role = \"load-balancer\"", "role = \"worker\"");
        let fingerprint = crate::engine::seed::Seed::from_bytes([7; 32]).fingerprint();
        for (what, text) in [
            ("seed", seed.to_string()),
            ("kubeadm etcd and users", kubeadm),
            ("no etcd", without_etcd.to_string()),
            ("one master, no load balancer", one_master),
        ] {
            let recipe = Recipe::parse(&text, std::path::Path::new("r.toml"))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let graph = super::plan(&recipe, fingerprint).unwrap_or_else(|e| panic!("{what}: {e}"));
            let mut planned: Vec<&str> = graph.nodes.iter().map(|n| n.drv.name.as_str()).collect();
            let names = recipe.derivation_names();
            let mut predicted: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
            planned.sort_unstable();
            predicted.sort_unstable();
            assert_eq!(predicted, planned, "{what}");
        }
    }
}
