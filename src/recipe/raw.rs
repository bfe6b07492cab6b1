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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Spanned<String>,
    pub domain: Option<Spanned<String>>,
    pub service_cidr: Spanned<String>,
    pub cluster_cidr: Spanned<String>,
    pub issue_date: Spanned<toml::value::Datetime>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPki {
    pub algorithm: Option<Spanned<String>>,
    pub ca_validity_hours: Option<Spanned<i64>>,
    pub validity_hours: Option<Spanned<i64>>,
    #[serde(default)]
    pub subject: RawSubject,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    pub country: Option<String>,
    pub state: Option<String>,
    pub locality: Option<String>,
    pub organizational_unit: Option<String>,
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
}
