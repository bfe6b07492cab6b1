//! The graph of derivations a build realises: nodes in dependency order, without duplicates, and the roots
//! linked under `out/`. Pure data: planning fills it, the scheduler walks it.

use std::collections::BTreeMap;

use super::derivation::{Derivation, DrvHash};

/// One derivation of the graph and the graph indices of its inputs.
#[derive(Clone, Debug)]
pub struct Node {
    pub drv: Derivation,
    pub hash: DrvHash,
    pub store_name: String,
    pub deps: Vec<usize>,
}

/// A top-level artifact: linked as `out/<link>`, to the store path or to one file in it.
#[derive(Clone, Debug)]
pub struct Root {
    pub link: String,
    pub node: usize,
    pub file: Option<String>,
}

/// Derivations in dependency order (every input before its users), without duplicates.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub roots: Vec<Root>,
    index: BTreeMap<DrvHash, usize>,
    by_name: BTreeMap<String, usize>,
}

impl Graph {
    /// Adds a derivation whose inputs are already in the graph; returns its index. A derivation that is
    /// already there (same hash) is not added twice.
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
        self.by_name
            .entry(self.nodes[i].drv.name.clone())
            .or_insert(i);
        i
    }

    /// Links `out/<link>` to the store path of `node`.
    pub fn root(&mut self, link: &str, node: usize) {
        self.roots.push(Root {
            link: link.to_string(),
            node,
            file: None,
        });
    }

    /// Links `out/<link>` to the file `file` inside the store path of `node`.
    pub fn root_file(&mut self, link: &str, node: usize, file: &str) {
        self.roots.push(Root {
            link: link.to_string(),
            node,
            file: Some(file.to_string()),
        });
    }

    /// The first node whose derivation is named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The hash of the node at index `i`.
    pub fn hash(&self, i: usize) -> DrvHash {
        self.nodes[i].hash
    }

    pub fn node_by_hash(&self, hash: &DrvHash) -> Option<&Node> {
        self.index.get(hash).map(|&i| &self.nodes[i])
    }

    /// The name of a derivation that shares its name with another one, if any (names must be unique: they
    /// name `out/` links and inputs).
    pub fn name_clash(&self) -> Option<&str> {
        if self.by_name.len() == self.nodes.len() {
            return None;
        }
        self.nodes
            .iter()
            .enumerate()
            .find(|(i, n)| self.by_name.get(&n.drv.name) != Some(i))
            .map(|(_, n)| n.drv.name.as_str())
    }
}
