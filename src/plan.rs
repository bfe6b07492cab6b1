//! The plan: a recipe turned into a graph of derivations. Pure: no I/O, no store, no seed bytes.

use std::collections::BTreeMap;

use crate::derivation::{Derivation, DerivationError, DrvHash};
use crate::encryption;
use crate::kubeconfig;
use crate::nginx;
use crate::overlay;
use crate::pki::PkiNodes;
use crate::recipe::{Recipe, Role};
use crate::seed::Fingerprint;

/// One derivation of the plan and the plan indices of its inputs.
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
pub struct Plan {
    pub nodes: Vec<Node>,
    pub roots: Vec<Root>,
    index: BTreeMap<DrvHash, usize>,
    by_name: BTreeMap<String, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Derivation(#[from] DerivationError),
    #[error(
        "two artifacts would both be named {0:?}: rename the host or user whose name makes it (names like \
         <host>-key, <host>-kubeconfig, <host>-overlay, <host>-bundle, user-<name> and the built-in certificate \
         names are taken)"
    )]
    NameClash(String),
    #[error("host {host}: its overlay needs {input:?}, which the plan does not make")]
    MissingInput { host: String, input: String },
}

impl Plan {
    /// Plans every artifact of `recipe` for the seed with fingerprint `seed`.
    pub fn new(recipe: &Recipe, seed: Fingerprint) -> Result<Plan, PlanError> {
        let mut plan = Plan::default();
        let pki = crate::pki::plan(recipe, seed, &mut plan)?;
        plan_kubeconfigs(recipe, &pki, &mut plan)?;
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
        plan_hosts(recipe, &mut plan)?;
        // Derivations are found by name (inputs of overlays, check): names must be unique.
        if plan.by_name.len() != plan.nodes.len() {
            let clash = plan
                .nodes
                .iter()
                .enumerate()
                .find(|(i, n)| plan.by_name.get(&n.drv.name) != Some(i))
                .map(|(_, n)| n.drv.name.clone())
                .unwrap_or_default();
            return Err(PlanError::NameClash(clash));
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

    pub fn node_by_hash(&self, hash: &DrvHash) -> Option<&Node> {
        self.index.get(hash).map(|&i| &self.nodes[i])
    }
}

/// `https://<ip>:6443` (brackets for IPv6).
pub fn api_url(ip: std::net::IpAddr) -> String {
    format!("https://{}", std::net::SocketAddr::new(ip, API_PORT))
}

/// The API server's port.
pub const API_PORT: u16 = 6443;

/// The kubeconfigs of the seed, plus `admin-remote` for the operator's machine.
fn plan_kubeconfigs(recipe: &Recipe, pki: &PkiNodes, plan: &mut Plan) -> Result<(), PlanError> {
    // Remote clients reach the API servers through the load balancer (or the only master).
    let front = recipe
        .load_balancer()
        .or_else(|| recipe.masters().next())
        .map(|h| api_url(h.ip));
    let local = api_url(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let mut wanted: Vec<(String, &str, String, String)> = Vec::new(); // (base, component, user, default server)
    for w in recipe.hosts.iter().filter(|h| h.role == Role::Worker) {
        wanted.push((
            w.name.clone(),
            "worker",
            format!("system:node:{}", w.name),
            front.clone().unwrap_or_default(),
        ));
    }
    for (base, user, server) in [
        (
            "kube-proxy",
            "system:kube-proxy",
            front.clone().unwrap_or_default(),
        ),
        (
            "kube-controller-manager",
            "system:kube-controller-manager",
            local.clone(),
        ),
        ("kube-scheduler", "system:kube-scheduler", local.clone()),
        ("admin", "admin", local.clone()),
    ] {
        wanted.push((base.to_string(), base, user.to_string(), server));
    }
    wanted.push((
        "admin-remote".to_string(),
        "admin-remote",
        "admin".to_string(),
        front.unwrap_or_default(),
    ));
    let Some(&ca) = pki.certs.get("ca") else {
        return Ok(());
    };
    for (base, component, user, default_server) in wanted {
        let client_base = if component == "admin-remote" {
            "admin"
        } else {
            base.as_str()
        };
        let Some(&client) = pki.certs.get(client_base) else {
            continue;
        };
        let server = recipe
            .kubeconfig_servers
            .get(component)
            .cloned()
            .unwrap_or(default_server);
        let file = format!("{base}.kubeconfig");
        let params = kubeconfig::Params {
            file: file.clone(),
            cluster: recipe.cluster.name.clone(),
            server,
            user,
            client_base: client_base.to_string(),
        };
        let inputs = BTreeMap::from([
            (kubeconfig::INPUT_CA.to_string(), plan.nodes[ca].hash),
            (
                kubeconfig::INPUT_CLIENT.to_string(),
                plan.nodes[client].hash,
            ),
        ]);
        let node = plan.add(Derivation::new(
            format!("{base}-kubeconfig"),
            kubeconfig::BUILDER,
            kubeconfig::BUILDER_VERSION,
            &params,
            inputs,
        )?);
        plan.root_file(&file, node, &file);
    }
    Ok(())
}

/// One overlay and one bundle per host; `out/<host>.tar.gz` and `out/<host>.manifest` link to the bundle.
fn plan_hosts(recipe: &Recipe, plan: &mut Plan) -> Result<(), PlanError> {
    for host in &recipe.hosts {
        let params = overlay::params(host);
        let mut inputs = BTreeMap::new();
        for f in &params.files {
            let Some(i) = plan.find(&f.input) else {
                return Err(PlanError::MissingInput {
                    host: host.name.clone(),
                    input: f.input.clone(),
                });
            };
            inputs.insert(f.input.clone(), plan.nodes[i].hash);
        }
        let listing = plan.add(Derivation::new(
            format!("{}-overlay", host.name),
            overlay::BUILDER,
            overlay::BUILDER_VERSION,
            &params,
            inputs.clone(),
        )?);
        inputs.insert(overlay::INPUT_OVERLAY.to_string(), plan.nodes[listing].hash);
        let bundle = plan.add(Derivation::new(
            format!("{}-bundle", host.name),
            overlay::BUNDLE_BUILDER,
            overlay::BUNDLE_BUILDER_VERSION,
            &overlay::BundleParams {
                host: host.name.clone(),
                files: params.files.clone(),
            },
            inputs,
        )?);
        let tar = overlay::bundle_file(&host.name);
        let manifest = overlay::manifest_file(&host.name);
        plan.root_file(&tar, bundle, &tar);
        plan.root_file(&manifest, bundle, &manifest);
    }
    Ok(())
}
