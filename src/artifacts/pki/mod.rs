//! The cluster's PKI: every key and certificate of the seed tutorial as derivations, bytes a pure function of
//! recipe and seed.
//!
//! Two builders:
//! - `pki.key` (derivation `<base>-key`): one private key, `<base>-key.pem`, PKCS#8 PEM, mode 0600. Its
//!   det-keygen seed is the secret seed's purpose-bound secret for `{kind: "key", name, algorithm, generation}`,
//!   so bumping a key's `generation` in the recipe rotates that key alone.
//! - `pki.cert` (derivation `<base>`, inputs `key` and, for leaves, `ca`): what cfssljson writes for one
//!   certificate: `<base>.pem`, `<base>-key.pem` (a copy of the key, 0600) and `<base>.csr` (PKCS#10, signed
//!   by the subject key). The CA is self-signed; every leaf is signed by it, so a new CA key re-issues every leaf.
//!
//! With `[etcd] pki = "kubeadm"` a second CA, `etcd-ca`, signs etcd's certificates only: `etcd-server-<master>`
//! and `etcd-peer-<master>` per master and `apiserver-etcd-client` (the API server's client of etcd). They come
//! after every other certificate, so the others' derivations are the same with either layout.
//!
//! Nothing reads a clock or an RNG: validity starts at the recipe's `issue_date`, the serial number is the
//! first 16 bytes of the certificate derivation's hash (top bit cleared), signatures are deterministic
//! (RSA PKCS#1 v1.5, ECDSA with RFC 6979 nonces). Subject key identifiers follow RFC 7093 method 1 (SHA-256 of
//! the public key bits, truncated to 160 bits); leaves carry the CA's as authority key identifier.
//!
//! Private keys are written as PKCS#8 (`BEGIN PRIVATE KEY`), the encoding of the det-keygen specification.
//! cfssl writes PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) instead; Kubernetes, etcd
//! (Go's `tls.X509KeyPair` tries PKCS#1, PKCS#8 and SEC1) and openssl read all three.

mod builder;
mod signer;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::PlanError;
use crate::engine::builder::{self as engine_builder, BuilderError};
use crate::engine::graph::Graph;
use crate::engine::seed::Fingerprint;
use crate::keys::{Algorithm, KeyError};
use crate::recipe::{AltName, EtcdPki, Host, Recipe};

pub use builder::{CertBuilder, KeyBuilder};
pub use signer::Signer;

/// Why a key or certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("SAN {san:?}: {reason}")]
    San { san: String, reason: String },
    #[error("subject {common_name:?} has {count} organizations; rcgen 0.14 writes one")]
    Organizations { common_name: String, count: usize },
    #[error("validity bound {0} (Unix seconds) is out of range")]
    Validity(i64),
    #[error("public key of a {algorithm} key: {reason}")]
    PublicKey {
        algorithm: Algorithm,
        reason: String,
    },
    #[error("{}: {source}", path.display())]
    Key {
        path: std::path::PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("{} is a {found} key; the plan wants {wanted}", path.display())]
    Algorithm {
        path: std::path::PathBuf,
        found: Algorithm,
        wanted: Algorithm,
    },
    #[error("generating the {algorithm} key {name:?}: {source}")]
    Generate {
        algorithm: Algorithm,
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("making the CSR: {0}")]
    Csr(#[source] rcgen::Error),
    #[error("signing the certificate: {0}")]
    Sign(#[source] rcgen::Error),
}

impl From<PkiError> for BuilderError {
    fn from(e: PkiError) -> BuilderError {
        BuilderError::artifact(e)
    }
}
/// Input role of a certificate's private key derivation.
pub const INPUT_KEY: &str = "key";
/// Input role of a leaf's issuing CA certificate derivation.
pub const INPUT_CA: &str = "ca";

/// Plan indices of the PKI's certificate derivations, by output base name (`ca`, `admin`, `node1`, ...).
/// Each such store path holds `<base>.pem`, `<base>-key.pem` and `<base>.csr`.
#[derive(Clone, Debug, Default)]
pub struct PkiNodes {
    pub certs: BTreeMap<String, usize>,
    /// Plan indices of the key derivations (`<base>-key.pem` inside), by the same base names.
    pub keys: BTreeMap<String, usize>,
}

/// Which key a certificate holds or is signed by: the identity its det-keygen seed is derived from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub name: String,
    pub algorithm: Algorithm,
    pub generation: u64,
}

/// Parameters of a `pki.key` derivation.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyParams {
    pub name: String,
    pub algorithm: Algorithm,
    pub generation: u64,
    pub seed: Fingerprint,
}

impl KeyParams {
    fn key_ref(&self) -> KeyRef {
        KeyRef {
            name: self.name.clone(),
            algorithm: self.algorithm,
            generation: self.generation,
        }
    }
}

/// A distinguished name, written in cfssl's (Go's) order: C, ST, L, O, OU, CN. Empty attributes are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    pub country: String,
    pub state: String,
    pub locality: String,
    /// One O per Kubernetes group (at most one: rcgen 0.14 keeps one value per attribute type).
    pub organization: Vec<String>,
    pub organizational_unit: String,
    pub common_name: String,
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Self-signed CA: CA:TRUE (critical), keyCertSign + cRLSign.
    Ca,
    /// The tutorial's `kubernetes` signing profile: CA:FALSE, digitalSignature + keyEncipherment,
    /// serverAuth + clientAuth.
    Leaf,
}

/// A subject alternative name in derivation parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum San {
    Dns(String),
    /// An IP address in its canonical text form.
    Ip(String),
}

/// The issuer of a leaf: its subject (the leaf's issuer name) and its key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuerRef {
    pub subject: Name,
    pub key: KeyRef,
}

/// Parameters of a `pki.cert` derivation.
#[derive(Clone, Serialize, Deserialize)]
pub struct CertParams {
    /// Output base name: `<name>.pem`, `<name>-key.pem`, `<name>.csr`.
    pub name: String,
    pub profile: Profile,
    pub subject: Name,
    /// In this order in the certificate.
    pub sans: Vec<San>,
    /// Validity window, seconds since the Unix epoch (UTC).
    pub not_before: i64,
    pub not_after: i64,
    pub key: KeyRef,
    /// `None`: self-signed.
    pub issuer: Option<IssuerRef>,
    pub seed: Fingerprint,
}

/// One certificate the recipe asks for, before it becomes derivations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSpec {
    pub name: String,
    pub profile: Profile,
    pub subject: Name,
    pub sans: Vec<San>,
    /// Base name of the CA that signs it ([`CLUSTER_CA`] or [`ETCD_CA`]), listed before it; `None`: self-signed.
    pub issuer: Option<String>,
}

/// The cluster CA's base name: it signs every certificate but etcd's in the kubeadm layout.
pub const CLUSTER_CA: &str = "ca";
/// The etcd CA of the kubeadm layout (`[etcd] pki = "kubeadm"`).
pub const ETCD_CA: &str = "etcd-ca";
/// The API server's client certificate for etcd in the kubeadm layout.
pub const APISERVER_ETCD_CLIENT: &str = "apiserver-etcd-client";

/// The kubeadm layout's serving certificate of the etcd member on `master`.
pub fn etcd_server(master: &str) -> String {
    format!("etcd-server-{master}")
}

/// The kubeadm layout's peer certificate of the etcd member on `master`.
pub fn etcd_peer(master: &str) -> String {
    format!("etcd-peer-{master}")
}

/// Whether `recipe` gives etcd its own CA (`[etcd] pki = "kubeadm"`).
pub fn kubeadm_etcd(recipe: &Recipe) -> bool {
    recipe
        .etcd
        .as_ref()
        .is_some_and(|e| e.pki == EtcdPki::Kubeadm)
}

/// Every certificate of `recipe`, CA first: the tutorial's table, one per worker, one per `[[pki.users]]`, then
/// in the kubeadm layout etcd's: its CA, a server and a peer certificate per master, the API server's client.
pub fn certificates(recipe: &Recipe) -> Vec<CertSpec> {
    let s = &recipe.pki.subject;
    let name = |o: &[&str], ou: &str, cn: &str| Name {
        country: s.country.clone(),
        state: s.state.clone(),
        locality: s.locality.clone(),
        organization: o.iter().map(|o| o.to_string()).collect(),
        organizational_unit: ou.to_string(),
        common_name: cn.to_string(),
    };
    let ou = s.organizational_unit.as_str();
    let leaf = |base: &str, cn: &str, o: &str, sans: Vec<San>| CertSpec {
        name: base.to_string(),
        profile: Profile::Leaf,
        subject: name(&[o], ou, cn),
        sans,
        issuer: Some(CLUSTER_CA.to_string()),
    };
    let mut out = vec![
        CertSpec {
            name: CLUSTER_CA.into(),
            profile: Profile::Ca,
            subject: name(&["Kubernetes"], "CA", "Kubernetes"),
            sans: Vec::new(),
            issuer: None,
        },
        leaf("admin", "admin", "system:masters", Vec::new()),
        leaf(
            "kube-controller-manager",
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            Vec::new(),
        ),
        leaf(
            "kube-proxy",
            "system:kube-proxy",
            "system:node-proxier",
            Vec::new(),
        ),
        leaf(
            "kube-scheduler",
            "system:kube-scheduler",
            "system:kube-scheduler",
            Vec::new(),
        ),
        leaf(
            "kubernetes",
            "kubernetes",
            "Kubernetes",
            api_server_sans(recipe),
        ),
        leaf(
            "service-account",
            "service-accounts",
            "Kubernetes",
            Vec::new(),
        ),
    ];
    for w in recipe.workers() {
        // The Node authorizer wants CN system:node:<name> (the tutorial's text says system:nodes:<name>).
        out.push(leaf(
            &w.name,
            &format!("system:node:{}", w.name),
            "system:nodes",
            vec![San::Dns(w.name.clone()), San::Ip(w.ip.to_string())],
        ));
    }
    for u in &recipe.pki.users {
        let groups: Vec<&str> = u.groups.iter().map(String::as_str).collect();
        out.push(CertSpec {
            name: u.cert_name(),
            profile: Profile::Leaf,
            subject: name(&groups, ou, &u.name),
            sans: Vec::new(),
            issuer: Some(CLUSTER_CA.to_string()),
        });
    }
    if kubeadm_etcd(recipe) {
        out.push(CertSpec {
            name: ETCD_CA.into(),
            profile: Profile::Ca,
            subject: name(&["Kubernetes"], "CA", ETCD_CA),
            sans: Vec::new(),
            issuer: None,
        });
        let etcd_leaf = |base: String, subject: Name, sans: Vec<San>| CertSpec {
            name: base,
            profile: Profile::Leaf,
            subject,
            sans,
            issuer: Some(ETCD_CA.to_string()),
        };
        for m in recipe.masters() {
            for base in [etcd_server(&m.name), etcd_peer(&m.name)] {
                out.push(etcd_leaf(base, name(&[], ou, &m.name), etcd_member_sans(m)));
            }
        }
        out.push(etcd_leaf(
            APISERVER_ETCD_CLIENT.into(),
            name(&["system:masters"], ou, "kube-apiserver-etcd-client"),
            Vec::new(),
        ));
    }
    out
}

/// SANs of an etcd member's server and peer certificates, without repeats: its name and IP, then loopback
/// (`localhost`, `127.0.0.1`) for etcdctl and the API server on the same master.
fn etcd_member_sans(m: &Host) -> Vec<San> {
    let mut sans = Vec::new();
    for s in [
        San::Dns(m.name.clone()),
        San::Ip(m.ip.to_string()),
        San::Dns("localhost".into()),
        San::Ip(Ipv4Addr::LOCALHOST.to_string()),
    ] {
        if !sans.contains(&s) {
            sans.push(s);
        }
    }
    sans
}

/// The API server's SANs, without repeats: the service IP, each master's IP and name, the load balancer's IP
/// and name, loopback, the in-cluster names, then `pki.extra_sans`.
pub fn api_server_sans(recipe: &Recipe) -> Vec<San> {
    let mut names: Vec<AltName> = Vec::new();
    let mut push = |n: AltName| {
        if !names.contains(&n) {
            names.push(n);
        }
    };
    if let Some(ip) = recipe.cluster.service_cidr.nth(1) {
        push(AltName::Ip(ip));
    }
    for h in recipe.masters().chain(recipe.load_balancer()) {
        push(AltName::Ip(h.ip));
        push(AltName::Dns(h.name.clone()));
    }
    push(AltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    for dns in [
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        format!("kubernetes.default.svc.{}", recipe.cluster.domain),
    ] {
        push(AltName::Dns(dns));
    }
    for extra in &recipe.pki.extra_sans {
        push(extra.clone());
    }
    names
        .into_iter()
        .map(|n| match n {
            AltName::Dns(d) => San::Dns(d),
            AltName::Ip(ip) => San::Ip(ip.to_string()),
        })
        .collect()
}

/// Adds the PKI's derivations to `plan`: per certificate its key, then the certificate (each CA before the
/// certificates it signs).
pub fn plan(recipe: &Recipe, seed: Fingerprint, plan: &mut Graph) -> Result<PkiNodes, PlanError> {
    let pki = &recipe.pki;
    let mut nodes = PkiNodes::default();
    // The CAs planned so far, by base name: their certificate's plan index and what their leaves name as issuer.
    let mut cas: BTreeMap<String, (usize, IssuerRef)> = BTreeMap::new();
    for spec in certificates(recipe) {
        let key = KeyParams {
            name: spec.name.clone(),
            algorithm: pki.algorithm_of(&spec.name),
            generation: pki.generation_of(&spec.name),
            seed,
        };
        let key_node = plan.add(engine_builder::derivation::<KeyBuilder>(
            format!("{}-key", spec.name),
            &key,
            BTreeMap::new(),
        )?);
        let mut inputs = BTreeMap::from([(INPUT_KEY.to_string(), plan.nodes[key_node].hash)]);
        let hours = match spec.profile {
            Profile::Ca => pki.ca_validity_hours,
            Profile::Leaf => pki.validity_hours,
        };
        let issuer = match &spec.issuer {
            None => None,
            Some(ca) => {
                let (ca_node, issuer) = cas
                    .get(ca)
                    .expect("certificates() lists every CA before the certificates it signs");
                inputs.insert(INPUT_CA.to_string(), plan.nodes[*ca_node].hash);
                Some(issuer.clone())
            }
        };
        let params = CertParams {
            name: spec.name.clone(),
            profile: spec.profile,
            subject: spec.subject.clone(),
            sans: spec.sans,
            not_before: recipe.cluster.issue_date,
            // Validated: at most 876000 hours after a date before year 10000.
            not_after: recipe.cluster.issue_date + (hours as i64) * 3600,
            key: key.key_ref(),
            issuer,
            seed,
        };
        let cert = plan.add(engine_builder::derivation::<CertBuilder>(
            spec.name.clone(),
            &params,
            inputs,
        )?);
        plan.root(&spec.name, cert);
        if spec.profile == Profile::Ca {
            cas.insert(
                spec.name.clone(),
                (
                    cert,
                    IssuerRef {
                        subject: spec.subject,
                        key: key.key_ref(),
                    },
                ),
            );
        }
        nodes.keys.insert(spec.name.clone(), key_node);
        nodes.certs.insert(spec.name, cert);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::BUILTIN_CERTIFICATES;

    fn seed_recipe() -> Recipe {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/seed.toml");
        Recipe::load(&path).expect("seed recipe")
    }

    #[test]
    fn builtin_names_are_the_recipe_modules() {
        let r = seed_recipe();
        let names: Vec<String> = certificates(&r).into_iter().map(|c| c.name).collect();
        assert_eq!(names[..BUILTIN_CERTIFICATES.len()], BUILTIN_CERTIFICATES);
        assert_eq!(names[BUILTIN_CERTIFICATES.len()..], ["node1", "node2"]);
    }

    fn seed_text() -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/seed.toml");
        std::fs::read_to_string(path).expect("seed recipe")
    }

    /// The seed recipe (whose `[etcd]` names no layout) with `pki = LAYOUT` in its `[etcd]` section, and
    /// `extra` TOML tables at the end.
    fn etcd_recipe(layout: Option<&str>, extra: &str) -> Recipe {
        let mut text = String::new();
        for line in seed_text().lines() {
            text.push_str(line);
            text.push('\n');
            if let Some(layout) = layout
                && line.starts_with("sha256 = ")
            {
                text.push_str(&format!("pki = \"{layout}\"\n"));
            }
        }
        assert!(
            layout.is_none() || text.contains("pki = \""),
            "recipes/seed.toml has no [etcd] sha256 line: update etcd_recipe"
        );
        text.push_str(extra);
        Recipe::parse(&text, std::path::Path::new("r.toml")).expect("recipe")
    }

    /// The seed recipe without its `[etcd]` section.
    fn without_etcd() -> Recipe {
        let mut text = String::new();
        let mut in_etcd = false;
        for line in seed_text().lines() {
            if line.starts_with('[') {
                in_etcd = line == "[etcd]";
            }
            if !in_etcd {
                text.push_str(line);
                text.push('\n');
            }
        }
        let r = Recipe::parse(&text, std::path::Path::new("r.toml")).expect("recipe");
        assert!(r.etcd.is_none());
        r
    }

    fn fingerprint() -> Fingerprint {
        crate::engine::seed::Seed::from_bytes([7; 32]).fingerprint()
    }

    fn planned(recipe: &Recipe) -> (Graph, PkiNodes) {
        let mut graph = Graph::default();
        let nodes = plan(recipe, fingerprint(), &mut graph).expect("plan");
        (graph, nodes)
    }

    fn sans_text(sans: &[San]) -> Vec<String> {
        sans.iter()
            .map(|s| match s {
                San::Dns(d) => format!("DNS:{d}"),
                San::Ip(i) => format!("IP:{i}"),
            })
            .collect()
    }

    #[test]
    fn the_tutorial_layout_adds_no_certificate() {
        let plain = certificates(&without_etcd());
        assert_eq!(seed_recipe().etcd.map(|e| e.pki), Some(EtcdPki::Tutorial));
        assert_eq!(certificates(&seed_recipe()), plain);
        assert_eq!(certificates(&etcd_recipe(Some("tutorial"), "")), plain);
        assert!(!kubeadm_etcd(&seed_recipe()));
        assert!(!kubeadm_etcd(&without_etcd()));
        assert!(kubeadm_etcd(&etcd_recipe(Some("kubeadm"), "")));
    }

    #[test]
    fn kubeadm_adds_etcds_certificates_after_the_others() {
        let seed = certificates(&seed_recipe());
        let all = certificates(&etcd_recipe(Some("kubeadm"), ""));
        assert_eq!(
            all[..seed.len()],
            seed[..],
            "the other certificates come first, unchanged"
        );
        let etcd = &all[seed.len()..];
        let names: Vec<&str> = etcd.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "etcd-ca",
                "etcd-server-master1",
                "etcd-peer-master1",
                "etcd-server-master2",
                "etcd-peer-master2",
                "apiserver-etcd-client",
            ]
        );
        let ca = &etcd[0];
        assert_eq!(ca.profile, Profile::Ca);
        assert_eq!(ca.issuer, None);
        assert_eq!(ca.subject.common_name, "etcd-ca");
        assert_eq!(ca.subject.organization, ["Kubernetes"]);
        assert_eq!(ca.subject.organizational_unit, "CA");
        assert_eq!(ca.subject.country, "US");
        assert!(ca.sans.is_empty());
        let cluster_ca = &seed[0];
        assert_ne!(
            ca.subject, cluster_ca.subject,
            "a verifier must tell the CAs apart"
        );
        for (spec, member, ip) in [
            (&etcd[1], "master1", "10.128.15.221"),
            (&etcd[2], "master1", "10.128.15.221"),
            (&etcd[3], "master2", "10.128.15.222"),
            (&etcd[4], "master2", "10.128.15.222"),
        ] {
            assert_eq!(spec.profile, Profile::Leaf, "{}", spec.name);
            assert_eq!(spec.issuer.as_deref(), Some("etcd-ca"), "{}", spec.name);
            assert_eq!(spec.subject.common_name, member, "{}", spec.name);
            assert!(spec.subject.organization.is_empty(), "{}", spec.name);
            assert_eq!(
                sans_text(&spec.sans),
                [
                    format!("DNS:{member}"),
                    format!("IP:{ip}"),
                    "DNS:localhost".into(),
                    "IP:127.0.0.1".into()
                ],
                "{}",
                spec.name
            );
        }
        let client = &etcd[5];
        assert_eq!(client.profile, Profile::Leaf);
        assert_eq!(client.issuer.as_deref(), Some("etcd-ca"));
        assert_eq!(client.subject.common_name, "kube-apiserver-etcd-client");
        assert_eq!(client.subject.organization, ["system:masters"]);
        assert!(client.sans.is_empty());
        for spec in &seed[1..] {
            assert_eq!(spec.issuer.as_deref(), Some("ca"), "{}", spec.name);
        }
    }

    #[test]
    fn member_sans_have_no_repeats() {
        let mut r = etcd_recipe(Some("kubeadm"), "");
        r.hosts[0].ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let server = certificates(&r)
            .into_iter()
            .find(|c| c.name == "etcd-server-master1")
            .expect("etcd-server-master1");
        assert_eq!(
            sans_text(&server.sans),
            ["DNS:master1", "IP:127.0.0.1", "DNS:localhost"]
        );
    }

    #[test]
    fn kubeadm_keeps_every_other_derivation() {
        let (plain, _) = planned(&without_etcd());
        let (tutorial, tutorial_nodes) = planned(&seed_recipe());
        let (kubeadm, kubeadm_nodes) = planned(&etcd_recipe(Some("kubeadm"), ""));
        let names = |g: &Graph| {
            g.nodes
                .iter()
                .map(|n| n.store_name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&tutorial),
            names(&plain),
            "the tutorial layout plans the same PKI"
        );
        let n = tutorial.nodes.len();
        assert_eq!(n, 2 * certificates(&seed_recipe()).len());
        assert_eq!(
            names(&kubeadm)[..n],
            names(&tutorial)[..],
            "same first {n} derivations"
        );
        assert_eq!(kubeadm.nodes.len(), n + 2 * 6);
        for (name, i) in &tutorial_nodes.certs {
            assert_eq!(kubeadm_nodes.certs[name], *i, "{name}");
        }
    }

    #[test]
    fn etcds_leaves_are_signed_by_the_etcd_ca() {
        let (g, nodes) = planned(&etcd_recipe(Some("kubeadm"), ""));
        let cert = |name: &str| &g.nodes[nodes.certs[name]];
        let params = |name: &str| -> CertParams {
            cert(name).drv.params.deserialized().expect("cert params")
        };
        let ca = params("ca");
        let etcd_ca = params("etcd-ca");
        assert!(etcd_ca.issuer.is_none(), "self-signed");
        assert!(!cert("etcd-ca").drv.inputs.contains_key(INPUT_CA));
        assert_eq!(etcd_ca.not_after - etcd_ca.not_before, 43_800 * 3600);
        assert_eq!(etcd_ca.key.name, "etcd-ca");
        assert_ne!(etcd_ca.key, ca.key);
        for leaf in [
            "etcd-server-master1",
            "etcd-peer-master1",
            "etcd-server-master2",
            "etcd-peer-master2",
            "apiserver-etcd-client",
        ] {
            let p = params(leaf);
            let issuer = p.issuer.as_ref().expect("signed");
            assert_eq!(issuer.subject, etcd_ca.subject, "{leaf}");
            assert_eq!(issuer.key, etcd_ca.key, "{leaf}");
            assert_eq!(
                cert(leaf).drv.inputs[INPUT_CA],
                cert("etcd-ca").hash,
                "{leaf}: the CA input is etcd-ca"
            );
            assert_eq!(
                cert(leaf).drv.inputs[INPUT_KEY],
                g.nodes[nodes.keys[leaf]].hash,
                "{leaf}"
            );
            assert_eq!(p.profile, Profile::Leaf);
            assert_eq!(p.not_after - p.not_before, 8_760 * 3600);
        }
        for leaf in ["admin", "kubernetes", "node1"] {
            assert_eq!(cert(leaf).drv.inputs[INPUT_CA], cert("ca").hash, "{leaf}");
            assert_eq!(params(leaf).issuer.expect("signed").key, ca.key, "{leaf}");
        }
        let links: Vec<&str> = g.roots.iter().map(|r| r.link.as_str()).collect();
        assert!(links.contains(&"etcd-ca") && links.contains(&"etcd-server-master2"));
    }

    #[test]
    fn etcd_keys_follow_the_algorithm_and_generation_tables() {
        let extra = "\n[pki.algorithms]\netcd-ca = \"ecdsa-p256\"\n\n[pki.generations]\netcd-peer-master2 = 3\n";
        let r = etcd_recipe(Some("kubeadm"), extra);
        let (g, nodes) = planned(&r);
        let key = |name: &str| -> KeyParams {
            g.nodes[nodes.keys[name]]
                .drv
                .params
                .deserialized()
                .expect("key params")
        };
        assert_eq!(key("etcd-ca").algorithm, Algorithm::EcdsaP256);
        assert_eq!(key("ca").algorithm, Algorithm::Rsa2048);
        assert_eq!(key("etcd-peer-master2").generation, 3);
        assert_eq!(key("etcd-server-master2").generation, 1);
        // Rotating the etcd CA's key re-issues etcd's certificates only.
        let (plain, plain_nodes) = planned(&etcd_recipe(Some("kubeadm"), ""));
        for name in ["ca", "kubernetes", "node2"] {
            assert_eq!(
                g.nodes[nodes.certs[name]].store_name,
                plain.nodes[plain_nodes.certs[name]].store_name,
                "{name}"
            );
        }
        for name in ["etcd-ca", "etcd-server-master1", "apiserver-etcd-client"] {
            assert_ne!(
                g.nodes[nodes.certs[name]].store_name,
                plain.nodes[plain_nodes.certs[name]].store_name,
                "{name}"
            );
        }
    }

    #[test]
    fn api_server_sans_of_the_seed() {
        let sans: Vec<String> = api_server_sans(&seed_recipe())
            .into_iter()
            .map(|s| match s {
                San::Dns(d) => format!("DNS:{d}"),
                San::Ip(i) => format!("IP:{i}"),
            })
            .collect();
        assert_eq!(
            sans,
            [
                "IP:10.32.0.1",
                "IP:10.128.15.221",
                "DNS:master1",
                "IP:10.128.15.222",
                "DNS:master2",
                "IP:10.128.15.226",
                "DNS:lb",
                "IP:127.0.0.1",
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
            ]
        );
    }
}
