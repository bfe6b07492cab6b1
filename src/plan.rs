//! The plan: a recipe turned into a graph of derivations. Pure: no I/O, no store, no seed bytes.

use std::collections::BTreeMap;

use crate::derivation::{Derivation, DerivationError, DrvHash};
use crate::encryption;
use crate::nginx;
use crate::recipe::Recipe;
use crate::seed::Fingerprint;

/// One derivation of the plan and the plan indices of its inputs.
#[derive(Clone, Debug)]
pub struct Node {
    pub drv: Derivation,
    pub hash: DrvHash,
    pub store_name: String,
    pub deps: Vec<usize>,
}

/// A top-level artifact: linked as `out/<link>`.
#[derive(Clone, Debug)]
pub struct Root {
    pub link: String,
    pub node: usize,
}

/// Derivations in dependency order (every input before its users), without duplicates.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub nodes: Vec<Node>,
    pub roots: Vec<Root>,
    index: BTreeMap<DrvHash, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Derivation(#[from] DerivationError),
}

impl Plan {
    /// Plans every artifact of `recipe` for the seed with fingerprint `seed`.
    pub fn new(recipe: &Recipe, seed: Fingerprint) -> Result<Plan, PlanError> {
        let mut plan = Plan::default();
        let enc =
            encryption::Params::new(recipe.encryption.provider, &recipe.encryption.keys, seed);
        let enc = plan.add(Derivation::new(
            "encryption-config",
            encryption::BUILDER,
            encryption::BUILDER_VERSION,
            &enc,
            BTreeMap::new(),
        )?);
        plan.root("encryption-config", enc);

        if let Some(lb) = recipe.load_balancer() {
            let params = nginx::Params {
                listen: lb.ip.to_string(),
                ports: vec![6443, 443],
                upstreams: recipe
                    .masters()
                    .map(|m| nginx::socket(m.ip, 6443))
                    .collect(),
            };
            let conf = plan.add(Derivation::new(
                format!("{}-nginx-stream", lb.name),
                nginx::BUILDER,
                nginx::BUILDER_VERSION,
                &params,
                BTreeMap::new(),
            )?);
            plan.root(&format!("{}-nginx-stream", lb.name), conf);
        }
        Ok(plan)
    }

    /// Adds a derivation whose inputs are already in the plan; returns its index.
    pub fn add(&mut self, drv: Derivation) -> usize {
        let hash = drv.hash();
        if let Some(&i) = self.index.get(&hash) {
            return i;
        }
        let deps = drv
            .inputs
            .values()
            .filter_map(|h| self.index.get(h).copied())
            .collect();
        let store_name = format!("{}-{}", hash.to_base32(), drv.name);
        self.nodes.push(Node {
            drv,
            hash,
            store_name,
            deps,
        });
        let i = self.nodes.len() - 1;
        self.index.insert(hash, i);
        i
    }

    pub fn root(&mut self, link: &str, node: usize) {
        self.roots.push(Root {
            link: link.to_string(),
            node,
        });
    }

    pub fn node_by_hash(&self, hash: &DrvHash) -> Option<&Node> {
        self.index.get(hash).map(|&i| &self.nodes[i])
    }
}
