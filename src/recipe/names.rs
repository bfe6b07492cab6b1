//! The names the plan gives its derivations, as a recipe determines them, each with the host or user that makes
//! it: validation uses them to refuse, at the line of the host or user, a name that would make a second
//! derivation of a name already taken (names must be unique: they name `out/` links and inputs).
//!
//! This restates the naming of `artifacts/` (pki, kubeconfig, encryption, lb, etcd, host_files, bundle), which
//! the recipe layer cannot call; `plan.rs`'s tests check it against real plans, so the two cannot drift apart.

use super::{BUILTIN_CERTIFICATES, EtcdPki, Recipe, Role};

/// What makes a derivation: the cluster itself (names that depend on no host or user), or one host or one
/// `[[pki.users]]` entry, by its index in the recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Maker {
    Cluster,
    Host(usize),
    User(usize),
}

/// The kubeconfigs of no host: `<base>-kubeconfig` (artifacts::kubeconfig).
const CLUSTER_KUBECONFIGS: [&str; 5] = [
    "kube-proxy",
    "kube-controller-manager",
    "kube-scheduler",
    "admin",
    "admin-remote",
];

/// The names collected so far, in order.
#[derive(Default)]
struct Names(Vec<(String, Maker)>);

impl Names {
    fn add(&mut self, maker: Maker, name: String) {
        self.0.push((name, maker));
    }

    /// A certificate `<base>` comes with its key `<base>-key` (artifacts::pki).
    fn cert(&mut self, maker: Maker, base: String) {
        self.add(maker, format!("{base}-key"));
        self.add(maker, base);
    }
}

impl Recipe {
    /// Every derivation name the plan of this recipe makes, with what makes it: the cluster's first, then each
    /// host's and each user's in recipe order.
    pub fn derivation_names(&self) -> Vec<(String, Maker)> {
        let mut out = Names::default();
        let kubeadm = self
            .etcd
            .as_ref()
            .is_some_and(|e| e.pki == EtcdPki::Kubeadm);
        for base in BUILTIN_CERTIFICATES {
            out.cert(Maker::Cluster, base.to_string());
        }
        if kubeadm {
            for base in ["etcd-ca", "apiserver-etcd-client"] {
                out.cert(Maker::Cluster, base.to_string());
            }
        }
        for base in CLUSTER_KUBECONFIGS {
            out.add(Maker::Cluster, format!("{base}-kubeconfig"));
        }
        out.add(Maker::Cluster, "encryption-config".to_string());
        if let Some(e) = &self.etcd {
            out.add(Maker::Cluster, e.tarball());
            out.add(Maker::Cluster, format!("etcd-{}", e.version));
            out.add(Maker::Cluster, format!("etcd-{}-segment", e.version));
        }
        let lb = self.load_balancer().map(|h| h.name.as_str());
        for (i, h) in self.hosts.iter().enumerate() {
            let (maker, n) = (Maker::Host(i), &h.name);
            match h.role {
                Role::Worker => {
                    out.cert(maker, n.clone());
                    out.add(maker, format!("{n}-kubeconfig"));
                }
                Role::Master if self.etcd.is_some() => {
                    out.add(maker, format!("{n}-etcd-unit"));
                    if kubeadm {
                        out.cert(maker, format!("etcd-server-{n}"));
                        out.cert(maker, format!("etcd-peer-{n}"));
                    }
                }
                Role::LoadBalancer if lb == Some(n.as_str()) => {
                    out.add(maker, format!("{n}-nginx-stream"));
                }
                Role::Master | Role::LoadBalancer => {}
            }
            out.add(maker, format!("{n}-overlay"));
            out.add(maker, format!("{n}-bundle"));
        }
        for (i, u) in self.pki.users.iter().enumerate() {
            out.cert(Maker::User(i), u.cert_name());
        }
        out.0
    }

    /// Each derivation name that a later maker makes again: (the name, the maker that makes it again, the
    /// first maker of it). One entry per maker at most (its first clash), in recipe order.
    pub(crate) fn name_clashes(&self) -> Vec<(String, Maker, Maker)> {
        let mut first: std::collections::BTreeMap<String, Maker> = Default::default();
        let mut out: Vec<(String, Maker, Maker)> = Vec::new();
        for (name, maker) in self.derivation_names() {
            match first.get(&name) {
                Some(&by) if out.last().is_none_or(|(_, m, _)| *m != maker) => {
                    out.push((name, maker, by));
                }
                Some(_) => {}
                None => {
                    first.insert(name, maker);
                }
            }
        }
        out
    }
}
