//! etcd's certificates in the kubeadm layout (`[etcd] pki = "kubeadm"`): a CA of its own, a server and a peer
//! certificate per member, the API server's client certificate; which hosts hold which of them.
//!
//! The tutorial layout has no rules here: etcd serves with the API server's `kubernetes.pem`, whose SANs
//! `check_identities` audits (naming etcd when a master's IP or loopback is missing).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{CertInfo, Ctx, Report};
pub(super) use crate::artifacts::pki::kubeadm_etcd as kubeadm;
use crate::artifacts::pki::{APISERVER_ETCD_CLIENT, CLUSTER_CA, ETCD_CA, etcd_peer, etcd_server};
use crate::recipe::{EtcdPki, Host, Recipe};

/// Whether `recipe` runs etcd with the tutorial's certificates (the API server's).
pub(super) fn tutorial(recipe: &Recipe) -> bool {
    recipe
        .etcd
        .as_ref()
        .is_some_and(|e| e.pki == EtcdPki::Tutorial)
}

/// The certificates the etcd CA must sign (and the cluster CA must not), by base name; empty in the tutorial
/// layout.
pub(super) fn signed_by_etcd_ca(recipe: &Recipe) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if kubeadm(recipe) {
        for m in recipe.masters() {
            out.insert(etcd_server(&m.name));
            out.insert(etcd_peer(&m.name));
        }
        out.insert(APISERVER_ETCD_CLIENT.to_string());
    }
    out
}

/// The etcd CA: present, a CA, self-signed, and not the cluster CA under another name. Returns it if usable
/// as the issuer to check etcd's certificates against.
pub(super) fn check_ca<'a>(
    certs: &'a BTreeMap<String, CertInfo>,
    report: &mut Report,
) -> Option<&'a CertInfo> {
    let Some(ca) = certs.get(ETCD_CA) else {
        report.error(
            ETCD_CA,
            "certificate missing (etcd.pki = \"kubeadm\" gives etcd a CA of its own)",
        );
        return None;
    };
    if !ca.is_ca || !ca.key_cert_sign {
        report.error(
            ETCD_CA,
            "the etcd CA certificate lacks CA:TRUE or keyCertSign",
        );
    }
    if let Err(e) = ca.verify_signed_by(ca) {
        report.error(ETCD_CA, format!("not a valid self-signed certificate: {e}"));
    }
    if let Some(cluster) = certs.get(CLUSTER_CA) {
        if cluster.spki_der == ca.spki_der {
            report.error(
                ETCD_CA,
                "has the cluster CA's key: whoever the cluster CA signs could then reach etcd",
            );
        }
        if cluster.subject_der == ca.subject_der {
            report.error(
                ETCD_CA,
                "has the cluster CA's subject: verifiers could not tell the two issuers apart",
            );
        }
    }
    Some(ca)
}

/// Checks that `etcd_ca` (and not the cluster CA) signed `c`.
pub(super) fn check_chain(
    base: &str,
    c: &CertInfo,
    etcd_ca: &CertInfo,
    cluster_ca: &CertInfo,
    report: &mut Report,
) {
    if let Err(e) = c.verify_signed_by(etcd_ca) {
        if c.verify_signed_by(cluster_ca).is_ok() {
            report.error(
                base,
                "is signed by the cluster CA: etcd's certificates must chain to etcd-ca (etcd.pki = \"kubeadm\")",
            );
        } else {
            report.error(base, format!("does not chain to etcd-ca: {e}"));
        }
    }
}

/// Each member's server and peer certificates (CN the member's name; SANs its name, IP and loopback;
/// serverAuth) and the API server's client certificate (clientAuth).
pub(super) fn check_identities(ctx: &Ctx, certs: &BTreeMap<String, CertInfo>, report: &mut Report) {
    if !kubeadm(ctx.recipe) {
        return;
    }
    for m in ctx.recipe.masters() {
        for (base, what) in [
            (etcd_server(&m.name), "serving"),
            (etcd_peer(&m.name), "peer"),
        ] {
            let Some(c) = certs.get(&base) else {
                report.error(
                    &base,
                    format!(
                        "certificate missing (etcd's {what} certificate on {})",
                        m.name
                    ),
                );
                continue;
            };
            if c.common_name != m.name {
                report.error(
                    &base,
                    format!("CN is {:?}; the etcd member is {:?}", c.common_name, m.name),
                );
            }
            let loopback = IpAddr::from([127, 0, 0, 1]);
            for dns in [m.name.as_str(), "localhost"] {
                if !c.dns_sans.iter().any(|d| d == dns) {
                    report.error(
                        &base,
                        format!(
                            "SANs lack DNS name {dns} (etcd's {what} certificate on {})",
                            m.name
                        ),
                    );
                }
            }
            for ip in [m.ip, loopback] {
                if !c.ip_sans.contains(&ip) {
                    report.error(
                        &base,
                        format!(
                            "SANs lack IP {ip} (etcd's {what} certificate on {})",
                            m.name
                        ),
                    );
                }
            }
            if !c.server_auth {
                report.error(
                    &base,
                    format!(
                        "extended key usage lacks serverAuth (etcd serves its {what} port with it)"
                    ),
                );
            }
        }
    }
    if !certs.contains_key(APISERVER_ETCD_CLIENT) {
        report.error(
            APISERVER_ETCD_CLIENT,
            "certificate missing (the API server's client certificate for etcd)",
        );
    }
}

/// One secret of the kubeadm layout and who may hold it: `(certificate base, what it is, allowed)`.
pub(super) type SecretRule = (String, String, Box<dyn Fn(&Host) -> bool>);

/// The kubeadm layout's private keys: the etcd CA's on no host, a member's server and peer keys on that
/// member only, the API server's etcd client key on every master.
pub(super) fn secret_rules(recipe: &Recipe) -> Vec<SecretRule> {
    if !kubeadm(recipe) {
        return Vec::new();
    }
    let mut rules: Vec<SecretRule> = vec![(
        ETCD_CA.to_string(),
        "the etcd CA's private key".to_string(),
        Box::new(|_: &Host| false),
    )];
    for m in recipe.masters() {
        for base in [etcd_server(&m.name), etcd_peer(&m.name)] {
            let member = m.name.clone();
            rules.push((
                base.clone(),
                format!("the {base} private key"),
                Box::new(move |h: &Host| h.name == member),
            ));
        }
    }
    rules.push((
        APISERVER_ETCD_CLIENT.to_string(),
        format!("the {APISERVER_ETCD_CLIENT} private key"),
        Box::new(|h: &Host| h.role == crate::recipe::Role::Master),
    ));
    rules
}

/// Where a master of the kubeadm layout must hold etcd's files: `(path, certificate base, file)`. The trust
/// anchors matter most: an etcd that trusted the cluster CA would let every kubelet's certificate in.
pub(super) fn master_files(master: &str) -> Vec<(&'static str, String, String)> {
    let server = etcd_server(master);
    let peer = etcd_peer(master);
    vec![
        ("/etc/etcd/ca.pem", ETCD_CA.into(), format!("{ETCD_CA}.pem")),
        (
            "/etc/etcd/server.pem",
            server.clone(),
            format!("{server}.pem"),
        ),
        (
            "/etc/etcd/server-key.pem",
            server.clone(),
            format!("{server}-key.pem"),
        ),
        ("/etc/etcd/peer.pem", peer.clone(), format!("{peer}.pem")),
        (
            "/etc/etcd/peer-key.pem",
            peer.clone(),
            format!("{peer}-key.pem"),
        ),
        (
            "/var/lib/kubernetes/etcd-ca.pem",
            ETCD_CA.into(),
            format!("{ETCD_CA}.pem"),
        ),
        (
            "/var/lib/kubernetes/apiserver-etcd-client.pem",
            APISERVER_ETCD_CLIENT.into(),
            format!("{APISERVER_ETCD_CLIENT}.pem"),
        ),
        (
            "/var/lib/kubernetes/apiserver-etcd-client-key.pem",
            APISERVER_ETCD_CLIENT.into(),
            format!("{APISERVER_ETCD_CLIENT}-key.pem"),
        ),
    ]
}

/// A master's etcd files (kubeadm layout), from its manifest: `held` maps each shipped path to its SHA-256.
pub(super) fn check_master_files(
    ctx: &Ctx,
    host: &Host,
    held: &BTreeMap<String, [u8; 32]>,
    report: &mut Report,
) {
    if !kubeadm(ctx.recipe) || host.role != crate::recipe::Role::Master {
        return;
    }
    for (path, base, file) in master_files(&host.name) {
        let Some(node) = ctx.node(&base) else {
            continue; // reported as a missing certificate
        };
        let Ok(want) = std::fs::read(ctx.path(node).join(&file)) else {
            continue;
        };
        match held.get(path) {
            None => report.error(&host.name, format!("lacks {path} (etcd's {file})")),
            Some(got) if *got != super::sha256(&want) => report.error(
                &host.name,
                format!("{path} is not {file} (etcd.pki = \"kubeadm\")"),
            ),
            Some(_) => {}
        }
    }
}
