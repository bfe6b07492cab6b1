//! Kubeconfigs: one file per client, certificates embedded, in exactly the form `kubectl config` writes.
//!
//! Key order and layout follow kubectl (apiVersion, clusters, contexts, current-context, kind, preferences,
//! users), so `kubectl config view --raw` reproduces the file byte for byte. One cluster name throughout: the
//! tutorial's kubelet loop pointed its context at a cluster that did not exist in the file.

use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::yaml::Yaml;

pub const BUILDER: &str = "kubeconfig";
pub const BUILDER_VERSION: u64 = 1;
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

/// Reads the inputs and renders the kubeconfig.
pub fn build(p: &Params, ca_dir: &Path, client_dir: &Path) -> Result<String, String> {
    let read = |path: std::path::PathBuf| {
        std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let ca = read(ca_dir.join("ca.pem"))?;
    let cert = read(client_dir.join(format!("{}.pem", p.client_base)))?;
    let key = read(client_dir.join(format!("{}-key.pem", p.client_base)))?;
    Ok(render(p, &ca, &cert, &key))
}
