//! Kubeconfigs: one file per client, certificates embedded, in exactly the form `kubectl config` writes.
//!
//! Key order and layout follow kubectl (apiVersion, clusters, contexts, current-context, kind, preferences,
//! users), so `kubectl config view --raw` reproduces the file byte for byte. One cluster name throughout: the
//! tutorial's kubelet loop pointed its context at a cluster that did not exist in the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::PlanError;
use super::lb::API_PORT;
use super::pki::PkiNodes;
use crate::engine::builder::{self, BuildContext, Builder, BuilderError};
use crate::engine::graph::Graph;
use crate::engine::store::{FileMode, OutputWriter};
use crate::formats::yaml::Yaml;
use crate::recipe::{Recipe, Role};

/// The `kubeconfig` builder: one `<base>.kubeconfig` (0600: it embeds the client key).
pub struct KubeconfigBuilder;

impl Builder for KubeconfigBuilder {
    const NAME: &'static str = "kubeconfig";
    const VERSION: u64 = 1;
    type Params = Params;

    fn build(
        &self,
        p: Params,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        let ca = ctx.read(&ctx.input(INPUT_CA)?.join("ca.pem"))?;
        let client = ctx.input(INPUT_CLIENT)?;
        let cert = ctx.read(&client.join(format!("{}.pem", p.client_base)))?;
        let key =
            zeroize::Zeroizing::new(ctx.read(&client.join(format!("{}-key.pem", p.client_base)))?);
        let text = render(&p, &ca, &cert, &key);
        out.file(&p.file, text.as_bytes(), FileMode::Secret)
    }
}
/// The context every kubeconfig uses, as in the tutorial.
pub const CONTEXT: &str = "default";

/// Input roles of a kubeconfig derivation.
pub const INPUT_CA: &str = "ca";
pub const INPUT_CLIENT: &str = "client";

/// Parameters of a kubeconfig derivation. Certificates come from the inputs.
#[derive(Serialize, Deserialize)]
pub struct Params {
    /// File name in the output (`admin.kubeconfig`).
    pub file: String,
    pub cluster: String,
    pub server: String,
    pub user: String,
    /// Base name of the client certificate in the `client` input (`admin` → admin.pem, admin-key.pem).
    pub client_base: String,
}

/// Renders a kubeconfig from the CA certificate and the client's certificate and key (PEM bytes).
pub fn render(p: &Params, ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> String {
    let b64 = |b: &[u8]| Yaml::Str(base64::engine::general_purpose::STANDARD.encode(b));
    Yaml::map([
        ("apiVersion", Yaml::str("v1")),
        (
            "clusters",
            Yaml::Seq(vec![Yaml::map([
                (
                    "cluster",
                    Yaml::map([
                        ("certificate-authority-data", b64(ca_pem)),
                        ("server", Yaml::str(&p.server)),
                    ]),
                ),
                ("name", Yaml::str(&p.cluster)),
            ])]),
        ),
        (
            "contexts",
            Yaml::Seq(vec![Yaml::map([
                (
                    "context",
                    Yaml::map([
                        ("cluster", Yaml::str(&p.cluster)),
                        ("user", Yaml::str(&p.user)),
                    ]),
                ),
                ("name", Yaml::str(CONTEXT)),
            ])]),
        ),
        ("current-context", Yaml::str(CONTEXT)),
        ("kind", Yaml::str("Config")),
        ("preferences", Yaml::Map(Vec::new())),
        (
            "users",
            Yaml::Seq(vec![Yaml::map([
                ("name", Yaml::str(&p.user)),
                (
                    "user",
                    Yaml::map([
                        ("client-certificate-data", b64(cert_pem)),
                        ("client-key-data", b64(key_pem)),
                    ]),
                ),
            ])]),
        ),
    ])
    .to_document()
}

/// `https://<ip>:6443` (brackets for IPv6).
pub fn api_url(ip: IpAddr) -> String {
    format!("https://{}", SocketAddr::new(ip, API_PORT))
}

/// The kubeconfigs of the seed, plus `admin-remote` for the operator's machine.
pub fn plan(recipe: &Recipe, pki: &PkiNodes, graph: &mut Graph) -> Result<(), PlanError> {
    // Remote clients reach the API servers through the load balancer (or the only master).
    let front = recipe
        .load_balancer()
        .or_else(|| recipe.masters().next())
        .map(|h| api_url(h.ip));
    let local = api_url(IpAddr::V4(Ipv4Addr::LOCALHOST));
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
        let params = Params {
            file: file.clone(),
            cluster: recipe.cluster.name.clone(),
            server,
            user,
            client_base: client_base.to_string(),
        };
        let inputs = BTreeMap::from([
            (INPUT_CA.to_string(), graph.hash(ca)),
            (INPUT_CLIENT.to_string(), graph.hash(client)),
        ]);
        let node = graph.add(builder::derivation::<KubeconfigBuilder>(
            derivation_name(&base),
            &params,
            inputs,
        )?);
        graph.root_file(&file, node, &file);
    }
    Ok(())
}

/// The derivation name of the kubeconfig `<base>.kubeconfig`.
pub fn derivation_name(base: &str) -> String {
    format!("{base}-kubeconfig")
}
