//! `encryption-config.yaml`: the API server's EncryptionConfiguration, keys derived from the seed.
//!
//! Providers are listed in recipe order: Kubernetes encrypts with the first key of the first provider and
//! decrypts with any. `identity: {}` always comes last so data written before encryption stays readable.
//! A key's bytes depend only on (provider, key name, generation) and the seed, so adding a second key for the
//! staged rotation leaves the first key unchanged.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::PlanError;
use crate::engine::builder::{self, BuildContext, Builder, BuilderError};
use crate::engine::derivation::to_canonical_cbor;
use crate::engine::graph::Graph;
use crate::engine::seed::{Fingerprint, Seed};
use crate::engine::store::{FileMode, OutputWriter};
use crate::formats::yaml::Yaml;
use crate::recipe::{EncryptionKey, Provider, Recipe};

pub const FILE: &str = "encryption-config.yaml";
/// The derivation's (and `out/` link's) name.
pub const NAME: &str = "encryption-config";

/// The `encryption-config` builder: `encryption-config.yaml` (0600: it holds the keys).
pub struct EncryptionConfigBuilder;

impl Builder for EncryptionConfigBuilder {
    const NAME: &'static str = "encryption-config";
    const VERSION: u64 = 1;
    type Params = Params;

    fn build(
        &self,
        params: Params,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        ctx.check_seed(&params.seed)?;
        out.file(FILE, render(ctx.seed, &params).as_bytes(), FileMode::Secret)
    }
}

/// Plans the encryption config (one for the cluster, shipped to every master).
pub fn plan(recipe: &Recipe, seed: Fingerprint, graph: &mut Graph) -> Result<usize, PlanError> {
    let params = Params::new(recipe.encryption.provider, &recipe.encryption.keys, seed);
    let node = graph.add(builder::derivation::<EncryptionConfigBuilder>(
        NAME,
        &params,
        BTreeMap::new(),
    )?);
    graph.root(NAME, node);
    Ok(node)
}

/// Parameters of the encryption-config derivation.
#[derive(Serialize, Deserialize)]
pub struct Params {
    pub provider: String,
    pub keys: Vec<KeyRef>,
    pub resources: Vec<String>,
    pub seed: Fingerprint,
}

#[derive(Serialize, Deserialize)]
pub struct KeyRef {
    pub name: String,
    pub generation: u64,
}

impl Params {
    pub fn new(provider: Provider, keys: &[EncryptionKey], seed: Fingerprint) -> Params {
        Params {
            provider: provider.name().to_string(),
            keys: if provider == Provider::Identity {
                Vec::new()
            } else {
                keys.iter()
                    .map(|k| KeyRef {
                        name: k.name.clone(),
                        generation: k.generation,
                    })
                    .collect()
            },
            resources: vec!["secrets".to_string()],
            seed,
        }
    }
}

/// The 32-byte data-encryption key for one key generation (AES-256 for aescbc/aesgcm, XSalsa20 for secretbox).
pub fn key_bytes(seed: &Seed, provider: &str, key: &KeyRef) -> [u8; 32] {
    let purpose = ciborium::Value::Map(vec![
        (text("kind"), text("encryption-key")),
        (text("provider"), text(provider)),
        (text("name"), text(&key.name)),
        (
            text("generation"),
            ciborium::Value::Integer(key.generation.into()),
        ),
    ]);
    // Text and integer values only: canonical encoding cannot fail.
    let purpose = to_canonical_cbor(&purpose).expect("plain purpose map");
    seed.derive(&purpose)
}

fn text(s: &str) -> ciborium::Value {
    ciborium::Value::Text(s.to_string())
}

/// Renders the EncryptionConfiguration document.
pub fn render(seed: &Seed, params: &Params) -> String {
    let mut providers = Vec::new();
    if params.provider != "identity" {
        let keys = params
            .keys
            .iter()
            .map(|k| {
                let secret = base64::engine::general_purpose::STANDARD.encode(key_bytes(
                    seed,
                    &params.provider,
                    k,
                ));
                Yaml::map([("name", Yaml::str(&k.name)), ("secret", Yaml::Str(secret))])
            })
            .collect();
        providers.push(Yaml::map([(
            params.provider.as_str(),
            Yaml::map([("keys", Yaml::Seq(keys))]),
        )]));
    }
    providers.push(Yaml::map([("identity", Yaml::Map(Vec::new()))]));
    Yaml::map([
        ("kind", Yaml::str("EncryptionConfiguration")),
        ("apiVersion", Yaml::str("apiserver.config.k8s.io/v1")),
        (
            "resources",
            Yaml::Seq(vec![Yaml::map([
                (
                    "resources",
                    Yaml::Seq(params.resources.iter().map(Yaml::str).collect()),
                ),
                ("providers", Yaml::Seq(providers)),
            ])]),
        ),
    ])
    .to_document()
}
