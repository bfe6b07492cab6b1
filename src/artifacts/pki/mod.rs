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
use crate::recipe::{AltName, Recipe};

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
}

/// Every certificate of `recipe`, CA first: the tutorial's table, one per worker, one per `[[pki.users]]`.
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
    };
    let mut out = vec![
        CertSpec {
            name: "ca".into(),
            profile: Profile::Ca,
            subject: name(&["Kubernetes"], "CA", "Kubernetes"),
            sans: Vec::new(),
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
        });
    }
    out
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

/// Adds the PKI's derivations to `plan`: per certificate its key, then the certificate (the CA first).
pub fn plan(recipe: &Recipe, seed: Fingerprint, plan: &mut Graph) -> Result<PkiNodes, PlanError> {
    let pki = &recipe.pki;
    let mut nodes = PkiNodes::default();
    let mut ca: Option<(usize, IssuerRef)> = None;
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
        let issuer = match (&spec.profile, &ca) {
            (Profile::Ca, _) | (Profile::Leaf, None) => None,
            (Profile::Leaf, Some((ca_node, issuer))) => {
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
            ca = Some((
                cert,
                IssuerRef {
                    subject: spec.subject,
                    key: key.key_ref(),
                },
            ));
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
