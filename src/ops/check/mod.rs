//! `hardway check`: audits a build the way a reviewer would, from the files in the store.
//!
//! Chain of trust, the CN/O that Kubernetes' Node authorizer and RBAC expect, API server SANs, kubeconfigs
//! (server reachable under a SAN, CA and client pair consistent), validity windows, least privilege per host
//! and one encryption config on every master. Findings are errors (exit 1) or warnings. With
//! `[etcd] pki = "kubeadm"`, etcd's own CA and certificates too (`etcd.rs`).

mod cert;
mod crypto;
mod etcd;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use cert::CertInfo;

use crate::artifacts::bundle as bundle_files;
use crate::artifacts::kubeconfig::KubeconfigBuilder;
use crate::artifacts::pki::{ETCD_CA, KeyBuilder};
use crate::engine::builder::Builder;
use crate::engine::graph::{Graph as Plan, Node};
use crate::engine::store::Store;
use crate::formats::bundle::{Manifest, RecordKind, verify_bundle};
use crate::recipe::{Host, Provider, Recipe, Role};

/// Warn when a certificate expires within this many days of the check date.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
}

/// One finding: what it is about and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub subject: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.subject, self.message)
    }
}

/// All findings, plus how many things were examined.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub certificates: usize,
    pub kubeconfigs: usize,
    pub hosts: usize,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Warning)
            .count()
    }

    fn error(&mut self, subject: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            level: Level::Error,
            subject: subject.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, subject: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            level: Level::Warning,
            subject: subject.into(),
            message: message.into(),
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0} is not built in {1}: run `hardway build` first")]
    NotBuilt(String, PathBuf),
}

/// Reads a store file as text, recording an error when it cannot.
fn read(report: &mut Report, subject: &str, path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            report.error(subject, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

struct Ctx<'a> {
    recipe: &'a Recipe,
    plan: &'a Plan,
    store: &'a Store,
    date: i64,
}

impl Ctx<'_> {
    fn node(&self, name: &str) -> Option<&Node> {
        self.plan.nodes.iter().find(|n| n.drv.name == name)
    }

    fn path(&self, node: &Node) -> PathBuf {
        self.store.path(&node.store_name)
    }
}

/// Checks the build of `recipe` (planned as `plan`) in `store`, as of `date` (Unix seconds).
pub fn check(recipe: &Recipe, plan: &Plan, store: &Store, date: i64) -> Result<Report, CheckError> {
    for node in &plan.nodes {
        if !store.is_built(&node.store_name) {
            return Err(CheckError::NotBuilt(
                node.drv.name.clone(),
                store.root().to_path_buf(),
            ));
        }
    }
    let ctx = Ctx {
        recipe,
        plan,
        store,
        date,
    };
    let mut report = Report::default();
    let certs = check_certificates(&ctx, &mut report);
    check_identities(&ctx, &certs, &mut report);
    etcd::check_identities(&ctx, &certs, &mut report);
    check_kubeconfigs(&ctx, &certs, &mut report);
    check_hosts(&ctx, &mut report);
    match recipe.encryption.provider {
        Provider::Aescbc => report.warn(
            "encryption-config",
            "aescbc is rated weak by Kubernetes (padding oracle); prefer secretbox, or KMS v2 with a key service",
        ),
        Provider::Identity => report.warn("encryption-config", "identity stores secrets unencrypted in etcd"),
        Provider::Aesgcm => report.warn(
            "encryption-config",
            "aesgcm keys must be rotated automatically (nonce reuse after ~2^32 writes); prefer secretbox",
        ),
        Provider::Secretbox => {}
    }
    Ok(report)
}

/// Every PKI certificate by base name, after checking each against the CA.
fn check_certificates(ctx: &Ctx, report: &mut Report) -> BTreeMap<String, CertInfo> {
    let mut certs = BTreeMap::new();
    for node in ctx
        .plan
        .nodes
        .iter()
        .filter(|n| n.drv.builder.starts_with("pki."))
    {
        let base = &node.drv.name;
        let pem_path = ctx.path(node).join(format!("{base}.pem"));
        // Certificate derivations hold X.pem, X-key.pem and X.csr; key derivations only X-key.pem.
        if !pem_path.exists() || !ctx.path(node).join(format!("{base}.csr")).exists() {
            continue;
        }
        let Some(pem) = read(report, base, &pem_path) else {
            continue;
        };
        match CertInfo::from_pem(&String::from_utf8_lossy(&pem)) {
            Ok(c) => {
                if let Some(key) = read(
                    report,
                    base,
                    &ctx.path(node).join(format!("{base}-key.pem")),
                ) {
                    match crypto::public_of_private_pem(&String::from_utf8_lossy(&key)) {
                        Ok(pk) if pk == c.spki_der => {}
                        Ok(_) => {
                            report.error(base, format!("{base}-key.pem does not match {base}.pem"))
                        }
                        Err(e) => report.error(base, format!("{base}-key.pem: {e}")),
                    }
                }
                certs.insert(base.clone(), c);
            }
            Err(e) => report.error(base, format!("{base}.pem: {e}")),
        }
    }
    report.certificates = certs.len();
    let Some(ca) = certs.get("ca") else {
        report.error("ca", "no CA certificate");
        return certs;
    };
    if !ca.is_ca || !ca.key_cert_sign {
        report.error("ca", "the CA certificate lacks CA:TRUE or keyCertSign");
    }
    if let Err(e) = ca.verify_signed_by(ca) {
        report.error("ca", format!("not a valid self-signed certificate: {e}"));
    }
    // The kubeadm layout: etcd's CA is self-signed and signs etcd's certificates; the cluster CA the rest.
    let kubeadm = etcd::kubeadm(ctx.recipe);
    let etcd_ca = if kubeadm {
        etcd::check_ca(&certs, report)
    } else {
        None
    };
    let by_etcd_ca = etcd::signed_by_etcd_ca(ctx.recipe);
    for (base, c) in &certs {
        let own_ca = kubeadm && base == ETCD_CA;
        if by_etcd_ca.contains(base) {
            if let Some(etcd_ca) = etcd_ca {
                etcd::check_chain(base, c, etcd_ca, ca, report);
            }
        } else if !own_ca && let Err(e) = c.verify_signed_by(ca) {
            report.error(base, format!("does not chain to the CA: {e}"));
        }
        if base != "ca" && !own_ca {
            if c.is_ca {
                report.error(base, "a leaf certificate must not be a CA");
            }
            if !c.digital_signature {
                report.error(base, "key usage lacks digitalSignature");
            }
            if !c.client_auth {
                report.error(base, "extended key usage lacks clientAuth");
            }
        }
        let day = 86_400;
        if ctx.date < c.not_before {
            report.error(
                base,
                format!(
                    "not valid before {} (checked as of {})",
                    date(c.not_before),
                    date(ctx.date)
                ),
            );
        } else if ctx.date >= c.not_after {
            report.error(
                base,
                format!(
                    "expired on {} (checked as of {})",
                    date(c.not_after),
                    date(ctx.date)
                ),
            );
        } else if c.not_after - ctx.date < EXPIRY_WARNING_DAYS * day {
            report.warn(
                base,
                format!(
                    "expires on {}, within {EXPIRY_WARNING_DAYS} days of {}",
                    date(c.not_after),
                    date(ctx.date)
                ),
            );
        }
    }
    certs
}

/// `YYYY-MM-DD` of a Unix time.
fn date(secs: i64) -> String {
    crate::recipe::civil_date(secs)
}

/// CN/O that the Node authorizer and the default RBAC bindings require, and the API server's SANs.
fn check_identities(ctx: &Ctx, certs: &BTreeMap<String, CertInfo>, report: &mut Report) {
    let expect = |report: &mut Report, base: &str, cn: &str, org: Option<&str>| {
        let Some(c) = certs.get(base) else {
            report.error(base, "certificate missing");
            return;
        };
        if c.common_name != cn {
            report.error(
                base,
                format!("CN is {:?}; Kubernetes expects {cn:?}", c.common_name),
            );
        }
        if let Some(o) = org
            && !c.organizations.iter().any(|x| x == o)
        {
            report.error(
                base,
                format!("O is {:?}; Kubernetes expects {o:?}", c.organizations),
            );
        }
    };
    expect(report, "admin", "admin", Some("system:masters"));
    expect(
        report,
        "kube-controller-manager",
        "system:kube-controller-manager",
        None,
    );
    expect(report, "kube-scheduler", "system:kube-scheduler", None);
    expect(report, "kube-proxy", "system:kube-proxy", None);
    for w in ctx.recipe.workers() {
        expect(
            report,
            &w.name,
            &format!("system:node:{}", w.name),
            Some("system:nodes"),
        );
        if let Some(c) = certs.get(&w.name) {
            if !c.dns_sans.contains(&w.name) || !c.ip_sans.contains(&w.ip) {
                report.error(
                    &w.name,
                    format!(
                        "SANs must include {} and {} (the kubelet's serving names)",
                        w.name, w.ip
                    ),
                );
            }
            if !c.server_auth {
                report.error(
                    &w.name,
                    "extended key usage lacks serverAuth (the kubelet serves with it)",
                );
            }
        }
    }
    let Some(api) = certs.get("kubernetes") else {
        report.error("kubernetes", "API server certificate missing");
        return;
    };
    if !api.server_auth {
        report.error("kubernetes", "extended key usage lacks serverAuth");
    }
    let mut need_ips: Vec<IpAddr> = ctx.recipe.cluster.service_cidr.nth(1).into_iter().collect();
    let mut need_dns: Vec<String> = Vec::new();
    for h in ctx.recipe.hosts.iter().filter(|h| h.role != Role::Worker) {
        need_ips.push(h.ip);
        need_dns.push(h.name.clone());
    }
    need_ips.push(IpAddr::from([127, 0, 0, 1]));
    // The tutorial's etcd serves clients and peers with this certificate at each master's IP and loopback.
    let etcd_ips: Vec<IpAddr> = if etcd::tutorial(ctx.recipe) {
        ctx.recipe
            .masters()
            .map(|m| m.ip)
            .chain([IpAddr::from([127, 0, 0, 1])])
            .collect()
    } else {
        Vec::new()
    };
    for n in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ] {
        need_dns.push(n.to_string());
    }
    need_dns.push(format!(
        "kubernetes.default.svc.{}",
        ctx.recipe.cluster.domain
    ));
    for ip in need_ips {
        if !api.ip_sans.contains(&ip) {
            let etcd = if etcd_ips.contains(&ip) {
                " (etcd serves with kubernetes.pem there in the tutorial layout)"
            } else {
                ""
            };
            report.error("kubernetes", format!("SANs lack IP {ip}{etcd}"));
        }
    }
    for d in need_dns {
        if !api.dns_sans.contains(&d) {
            report.error("kubernetes", format!("SANs lack DNS name {d}"));
        }
    }
}

/// What `check` reads of a kubeconfig, through its current context (parsed by a YAML 1.2 parser).
struct KubeconfigView {
    current_context: String,
    context_cluster: String,
    context_user: String,
    cluster_name: String,
    server: Option<String>,
    ca_data: Option<String>,
    user_name: String,
    client_cert_data: Option<String>,
    client_key_data: Option<String>,
}

impl KubeconfigView {
    fn parse(text: &str) -> Result<KubeconfigView, String> {
        use yaml_rust2::{Yaml, YamlLoader};
        let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        let [doc] = docs.as_slice() else {
            return Err(format!("{} YAML documents, expected one", docs.len()));
        };
        let text_of = |y: &Yaml| y.as_str().map(str::to_string);
        let named = |list: &str, name: &str, body: &str| -> Result<Yaml, String> {
            doc[list]
                .as_vec()
                .ok_or_else(|| format!("no {list} list"))?
                .iter()
                .find(|e| e["name"].as_str() == Some(name))
                .map(|e| e[body].clone())
                .ok_or_else(|| format!("no entry named {name:?} in {list}"))
        };
        let current_context = text_of(&doc["current-context"]).ok_or("no current-context")?;
        let context = named("contexts", &current_context, "context")?;
        let context_cluster = text_of(&context["cluster"]).ok_or("its context names no cluster")?;
        let context_user = text_of(&context["user"]).ok_or("its context names no user")?;
        let cluster = named("clusters", &context_cluster, "cluster")?;
        let user = named("users", &context_user, "user")?;
        Ok(KubeconfigView {
            cluster_name: context_cluster.clone(),
            server: text_of(&cluster["server"]),
            ca_data: text_of(&cluster["certificate-authority-data"]),
            user_name: context_user.clone(),
            client_cert_data: text_of(&user["client-certificate-data"]),
            client_key_data: text_of(&user["client-key-data"]),
            current_context,
            context_cluster,
            context_user,
        })
    }
}

/// The host of an `https://host:port` URL (brackets of an IPv6 literal removed), or why it has none.
fn server_host(server: &str) -> Result<&str, String> {
    let rest = server
        .strip_prefix("https://")
        .ok_or_else(|| format!("server {server:?} is not an https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => v6
            .split_once("]:")
            .ok_or_else(|| format!("server {server:?} has no port"))?,
        None => authority
            .rsplit_once(':')
            .ok_or_else(|| format!("server {server:?} has no port"))?,
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("server {server:?} has no valid port"));
    }
    Ok(host)
}

fn check_kubeconfigs(ctx: &Ctx, certs: &BTreeMap<String, CertInfo>, report: &mut Report) {
    use base64::Engine as _;
    let b64 = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
    };
    let ca_pem = ctx
        .node("ca")
        .and_then(|n| std::fs::read(ctx.path(n).join("ca.pem")).ok());
    let api = certs.get("kubernetes");
    for node in ctx
        .plan
        .nodes
        .iter()
        .filter(|n| n.drv.builder == <KubeconfigBuilder as Builder>::NAME)
    {
        let Ok(params) = node
            .drv
            .params
            .deserialized::<crate::artifacts::kubeconfig::Params>()
        else {
            continue;
        };
        let subject = params.file.clone();
        let Some(bytes) = read(report, &subject, &ctx.path(node).join(&params.file)) else {
            continue;
        };
        report.kubeconfigs += 1;
        let kc = match KubeconfigView::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(kc) => kc,
            Err(e) => {
                report.error(&subject, e);
                continue;
            }
        };
        let cluster = ctx.recipe.cluster.name.as_str();
        if kc.context_cluster != cluster || kc.cluster_name != cluster {
            report.error(
                &subject,
                format!("context and cluster must both be {cluster:?}"),
            );
        }
        if kc.current_context != crate::artifacts::kubeconfig::CONTEXT {
            report.error(
                &subject,
                format!(
                    "current-context is {:?}, not {:?}",
                    kc.current_context,
                    crate::artifacts::kubeconfig::CONTEXT
                ),
            );
        }
        let ca = b64(&kc.ca_data);
        if ca.is_none() || ca != ca_pem {
            report.error(
                &subject,
                "certificate-authority-data is not the cluster's CA",
            );
        }
        match kc.server.as_deref().map(|s| (s, server_host(s))) {
            Some((_, Err(e))) => report.error(&subject, e),
            Some((server, Ok(host))) => {
                let covered = api.is_some_and(|a| {
                    host.parse::<IpAddr>().map_or_else(
                        |_| a.dns_sans.iter().any(|d| d == host),
                        |ip| a.ip_sans.contains(&ip),
                    )
                });
                if !covered {
                    report.error(
                        &subject,
                        format!(
                            "server {server}: {host} is not in the API server certificate's SANs"
                        ),
                    );
                }
            }
            None => report.error(&subject, "no server"),
        }
        let cert = b64(&kc.client_cert_data);
        let key = b64(&kc.client_key_data);
        match (cert, key) {
            (Some(cert), Some(key)) => match CertInfo::from_pem(&String::from_utf8_lossy(&cert)) {
                Ok(c) => {
                    if ca_pem.is_some()
                        && certs
                            .get("ca")
                            .is_some_and(|ca| c.verify_signed_by(ca).is_err())
                    {
                        report.error(&subject, "client certificate does not chain to the CA");
                    }
                    if crypto::public_of_private_pem(&String::from_utf8_lossy(&key))
                        .ok()
                        .as_ref()
                        != Some(&c.spki_der)
                    {
                        report.error(&subject, "client key does not match the client certificate");
                    }
                    if kc.user_name != c.common_name || kc.context_user != c.common_name {
                        report.error(
                            &subject,
                            format!(
                                "user {:?} is not the certificate's CN {:?}",
                                kc.user_name, c.common_name
                            ),
                        );
                    }
                }
                Err(e) => report.error(&subject, format!("client certificate: {e}")),
            },
            _ => report.error(&subject, "client certificate or key missing"),
        }
    }
}

/// What each secret is and which hosts may hold it.
struct Secret {
    what: String,
    allowed: Box<dyn Fn(&Host) -> bool>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Every secret the build made, by the SHA-256 of its bytes, so it is recognised under any name or path.
fn secrets(ctx: &Ctx) -> BTreeMap<[u8; 32], Secret> {
    let mut secrets: BTreeMap<[u8; 32], Secret> = BTreeMap::new();
    let mut add =
        |node_name: &str, file: &str, what: String, allowed: Box<dyn Fn(&Host) -> bool>| {
            if let Some(n) = ctx.node(node_name)
                && let Ok(b) = std::fs::read(ctx.path(n).join(file))
            {
                secrets.insert(sha256(&b), Secret { what, allowed });
            }
        };
    let masters = || Box::new(|h: &Host| h.role == Role::Master);
    let nobody = || Box::new(|_: &Host| false);
    // Every private key belongs on no host unless a rule below says which (later inserts replace earlier).
    for node in ctx
        .plan
        .nodes
        .iter()
        .filter(|n| n.drv.builder == <KeyBuilder as Builder>::NAME)
    {
        let base = node.drv.name.trim_end_matches("-key");
        add(
            &node.drv.name,
            &format!("{base}-key.pem"),
            format!("the {base} private key"),
            nobody(),
        );
    }
    for base in ["ca", "kubernetes", "service-account"] {
        add(
            base,
            &format!("{base}-key.pem"),
            format!("the {base} private key"),
            masters(),
        );
    }
    add(
        "encryption-config",
        "encryption-config.yaml",
        "the encryption key".into(),
        masters(),
    );
    for c in ["kube-controller-manager", "kube-scheduler", "admin"] {
        add(
            &format!("{c}-kubeconfig"),
            &format!("{c}.kubeconfig"),
            format!("{c}'s credentials"),
            masters(),
        );
    }
    // Client keys travel inside kubeconfigs only (covered above); the operator's kubeconfig goes nowhere.
    add(
        "admin-remote-kubeconfig",
        "admin-remote.kubeconfig",
        "the operator's admin credentials".into(),
        nobody(),
    );
    add(
        "kube-proxy-kubeconfig",
        "kube-proxy.kubeconfig",
        "kube-proxy's credentials".into(),
        Box::new(|h: &Host| h.role == Role::Worker),
    );
    for (base, what, allowed) in etcd::secret_rules(ctx.recipe) {
        add(&base, &format!("{base}-key.pem"), what, allowed);
    }
    for w in ctx.recipe.workers() {
        let (a, b) = (w.name.clone(), w.name.clone());
        add(
            &w.name,
            &format!("{}-key.pem", w.name),
            format!("{}'s private key", w.name),
            Box::new(move |h: &Host| h.name == a),
        );
        add(
            &format!("{}-kubeconfig", w.name),
            &format!("{}.kubeconfig", w.name),
            format!("{}'s credentials", w.name),
            Box::new(move |h: &Host| h.name == b),
        );
    }
    secrets
}

/// Least privilege per host, from each bundle's manifest (what ships), and the bundle's own hash.
fn check_hosts(ctx: &Ctx, report: &mut Report) {
    let secrets = secrets(ctx);
    let mut encryption_configs = BTreeMap::new();
    for host in &ctx.recipe.hosts {
        let Some(node) = ctx.node(&format!("{}-bundle", host.name)) else {
            report.error(&host.name, "no bundle planned");
            continue;
        };
        report.hosts += 1;
        let dir = ctx.path(node);
        let Some(text) = read(
            report,
            &host.name,
            &dir.join(bundle_files::manifest_file(&host.name)),
        ) else {
            continue;
        };
        let manifest = match Manifest::parse(&String::from_utf8_lossy(&text)) {
            Ok(m) => m,
            Err(e) => {
                report.error(&host.name, format!("manifest: {e}"));
                continue;
            }
        };
        let bundle = dir.join(bundle_files::bundle_file(&host.name));
        match std::fs::File::open(&bundle) {
            Ok(f) => {
                if let Err(e) = verify_bundle(&manifest, std::io::BufReader::new(f)) {
                    report.error(
                        &host.name,
                        format!("the bundle does not match its manifest: {e}"),
                    );
                }
            }
            Err(e) => report.error(&host.name, format!("cannot read {}: {e}", bundle.display())),
        }
        let mut held = BTreeMap::new();
        let mut by_path = BTreeMap::new();
        for (path, record) in &manifest.entries {
            let RecordKind::File(digest) = record.kind else {
                continue;
            };
            held.insert(digest.sha256, path.clone());
            by_path.insert(path.clone(), digest.sha256);
            if let Some(s) = secrets.get(&digest.sha256) {
                if !(s.allowed)(host) {
                    report.error(
                        &host.name,
                        format!("least privilege: receives {} at {path}", s.what),
                    );
                }
                if record.mode & 0o077 != 0 {
                    report.error(
                        &host.name,
                        format!("{path} holds {} but has mode {:04o}", s.what, record.mode),
                    );
                }
            }
            if path.ends_with("/encryption-config.yaml") {
                encryption_configs.insert(host.name.clone(), digest.sha256);
            }
        }
        etcd::check_master_files(ctx, host, &by_path, report);
        for (h, s) in &secrets {
            if (s.allowed)(host) && !held.contains_key(h) {
                report.error(
                    &host.name,
                    format!("lacks {}, which its role needs", s.what),
                );
            }
        }
    }
    let masters = ctx.recipe.masters().count();
    let distinct: std::collections::BTreeSet<_> = encryption_configs.values().collect();
    if distinct.len() > 1 || encryption_configs.len() != masters {
        report.error(
            "encryption-config",
            "every master must hold the same encryption-config.yaml",
        );
    }
}
