//! The recipe as written: TOML structures with spans, before any meaning is checked.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipe {
    pub cluster: RawCluster,
    #[serde(default)]
    pub pki: RawPki,
    #[serde(default)]
    pub encryption: RawEncryption,
    #[serde(default)]
    pub hosts: Vec<RawHost>,
    #[serde(default)]
    pub kubeconfigs: RawKubeconfigs,
    pub etcd: Option<RawEtcd>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEtcd {
    pub version: Spanned<String>,
    pub urls: Spanned<Vec<Spanned<String>>>,
    pub sha256: Spanned<String>,
    /// Binary name → SHA-256, checked after unpacking.
    #[serde(default)]
    pub members: std::collections::BTreeMap<String, Spanned<String>>,
    /// `tutorial` (etcd reuses the API server's certificate) or `kubeadm` (a separate etcd CA).
    pub pki: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawKubeconfigs {
    #[serde(default)]
    pub servers: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Spanned<String>,
    pub domain: Option<Spanned<String>>,
    pub service_cidr: Spanned<String>,
    pub cluster_cidr: Spanned<String>,
    pub issue_date: Spanned<toml::value::Datetime>,
    /// A single-machine lab: hosts may have loopback addresses (127.0.0.0/8).
    #[serde(default)]
    pub loopback_lab: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPki {
    pub algorithm: Option<Spanned<String>>,
    pub ca_validity_hours: Option<Spanned<i64>>,
    pub validity_hours: Option<Spanned<i64>>,
    #[serde(default)]
    pub subject: RawSubject,
    #[serde(default)]
    pub extra_sans: Vec<Spanned<String>>,
    #[serde(default)]
    pub users: Vec<RawPkiUser>,
    /// Certificate base name → algorithm; map keys carry no span, so errors point at the value.
    #[serde(default)]
    pub algorithms: std::collections::BTreeMap<String, Spanned<String>>,
    /// Certificate base name → key generation.
    #[serde(default)]
    pub generations: std::collections::BTreeMap<String, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPkiUser {
    pub name: Spanned<String>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    pub country: Option<Spanned<String>>,
    pub state: Option<Spanned<String>>,
    pub locality: Option<Spanned<String>>,
    pub organizational_unit: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    pub provider: Option<Spanned<String>>,
    pub keys: Option<Spanned<Vec<RawEncryptionKey>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEncryptionKey {
    pub name: Spanned<String>,
    pub generation: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub name: Spanned<String>,
    pub ip: Spanned<String>,
    pub role: Spanned<String>,
    /// `user@address:port` for `hardway push` (default `root@<ip>:22`).
    pub ssh: Option<Spanned<String>>,
}
