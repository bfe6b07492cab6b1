//! Derivations: a builder plus hashed inputs, encoded as canonical CBOR and hashed with BLAKE3.
//!
//! A [`Derivation`] names its builder (and the builder's version), its output name, plain-data parameters and the
//! hashes of the derivations it consumes. Its identity is [`DrvHash`]: BLAKE3 in derive-key mode, under a
//! versioned context string, over the canonical CBOR encoding produced by [`to_canonical_cbor`].
//! Nothing here touches the store.

mod canonical;
mod hash;

pub use canonical::{CanonicalError, to_canonical_cbor, to_canonical_value};

#[cfg(test)]
mod envelope_tests {
    use super::*;

    #[test]
    fn envelope_order_is_canonical() {
        // Inputs whose byte order and canonical (length-first) order differ.
        let inputs = BTreeMap::from([
            ("admin-kubeconfig".to_string(), DrvHash::from_bytes([1; 32])),
            ("ca".to_string(), DrvHash::from_bytes([2; 32])),
            ("key".to_string(), DrvHash::from_bytes([3; 32])),
        ]);
        let d = Derivation::new("x", "b", 3, &[("z", 1u8), ("aa", 2u8)], inputs).expect("drv");
        let bytes = d.to_cbor();
        let value: ciborium::Value = ciborium::from_reader(bytes.as_slice()).expect("decode");
        assert_eq!(to_canonical_cbor(&value).expect("canonical"), bytes);
    }
}
pub use hash::{DrvHash, base32_encode};

use std::collections::BTreeMap;

/// Version of the derivation encoding. Bump it when the encoding or the hash changes meaning.
pub const SCHEME: u64 = 1;

/// BLAKE3 derive-key context for derivation hashes.
const DRV_CONTEXT: &str = "hardway 2026-11 derivation hash v1";

/// A build step: the builder, its version, its output name, parameters and inputs by hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivation {
    /// Output name, the part of the store path after the hash (e.g. `ca`, `master1-bundle`).
    pub name: String,
    /// Which builder realises it.
    pub builder: String,
    /// The builder's version: bump it whenever the builder's output for the same parameters changes.
    pub builder_version: u64,
    /// Plain-data parameters, already canonical (maps sorted, no floats).
    pub params: ciborium::Value,
    /// Inputs by role name. `BTreeMap` fixes the order.
    pub inputs: BTreeMap<String, DrvHash>,
}

/// A derivation that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DerivationError {
    #[error(
        "derivation name {0:?} is not a valid store name (use letters, digits and . _ + - only)"
    )]
    BadName(String),
    #[error("derivation {name}: {source}")]
    Params {
        name: String,
        #[source]
        source: CanonicalError,
    },
}

impl Derivation {
    /// Makes a derivation from any serialisable parameter struct.
    pub fn new<P: serde::Serialize>(
        name: impl Into<String>,
        builder: &str,
        builder_version: u64,
        params: &P,
        inputs: BTreeMap<String, DrvHash>,
    ) -> Result<Self, DerivationError> {
        let name = name.into();
        if !valid_store_name(&name) {
            return Err(DerivationError::BadName(name));
        }
        let params = to_canonical_value(params).map_err(|source| DerivationError::Params {
            name: name.clone(),
            source,
        })?;
        Ok(Derivation {
            name,
            builder: builder.to_string(),
            builder_version,
            params,
            inputs,
        })
    }

    /// The canonical CBOR encoding: the bytes that are hashed and stored in the sidecar.
    ///
    /// `params` is canonical already (made by [`Derivation::new`]), so only the envelope is ordered here: its
    /// keys in canonical order (shorter first, then bytewise) and the inputs sorted by encoded key.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut inputs: Vec<(&String, &DrvHash)> = self.inputs.iter().collect();
        inputs.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
        let inputs = ciborium::Value::Map(
            inputs
                .into_iter()
                .map(|(k, v)| (text(k), ciborium::Value::Bytes(v.as_bytes().to_vec())))
                .collect(),
        );
        // A map of six entries (0xa6), written piece by piece so the parameters are not copied.
        let mut out = vec![0xa6];
        let mut put = |v: &ciborium::Value| out.extend_from_slice(&canonical::encode(v));
        put(&text("name"));
        put(&text(&self.name));
        put(&text("inputs"));
        put(&inputs);
        put(&text("params"));
        put(&self.params);
        put(&text("scheme"));
        put(&ciborium::Value::Integer(SCHEME.into()));
        put(&text("builder"));
        put(&text(&self.builder));
        put(&text("builder_version"));
        put(&ciborium::Value::Integer(self.builder_version.into()));
        out
    }

    /// The derivation's hash, which names its store path.
    pub fn hash(&self) -> DrvHash {
        DrvHash::of_cbor(&self.to_cbor())
    }

    /// `<hash>-<name>`: the file name of the store path.
    pub fn store_name(&self) -> String {
        format!("{}-{}", self.hash().to_base32(), self.name)
    }
}

impl DrvHash {
    /// The hash of a derivation given as its canonical CBOR (as a sidecar records it).
    pub fn of_cbor(cbor: &[u8]) -> DrvHash {
        DrvHash::from_bytes(
            *blake3::Hasher::new_derive_key(DRV_CONTEXT)
                .update(cbor)
                .finalize()
                .as_bytes(),
        )
    }
}

fn text(s: &str) -> ciborium::Value {
    ciborium::Value::Text(s.to_string())
}

/// Store names use a conservative alphabet so they are safe in shells, tar and URLs.
pub fn valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct P {
        b: u32,
        a: &'static str,
    }

    #[test]
    fn hash_ignores_field_declaration_order() {
        #[derive(serde::Serialize)]
        struct Q {
            a: &'static str,
            b: u32,
        }
        let x = Derivation::new("x", "t", 1, &P { b: 1, a: "z" }, BTreeMap::new()).expect("ok");
        let y = Derivation::new("x", "t", 1, &Q { a: "z", b: 1 }, BTreeMap::new()).expect("ok");
        assert_eq!(x.hash(), y.hash());
        let z = Derivation::new("x", "t", 2, &Q { a: "z", b: 1 }, BTreeMap::new()).expect("ok");
        assert_ne!(x.hash(), z.hash());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", ".hidden", "a/b", "a b", "ü"] {
            assert!(
                Derivation::new(bad, "t", 1, &(), BTreeMap::new()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn golden_hash_of_a_fixed_derivation() {
        // Pins the encoding and the hash: if this changes, every store path changes, so bump SCHEME.
        // The store name was cross-checked with Python's `blake3` package:
        //   blake3.blake3(cbor, derive_key_context="hardway 2026-11 derivation hash v1").digest()[:20]
        //   in base32 with the alphabet of hash.rs.
        let d =
            Derivation::new("ca", "pki.ca", 1, &P { b: 7, a: "x" }, BTreeMap::new()).expect("ok");
        assert_eq!(
            hex(&d.to_cbor()),
            // {"name": "ca", "inputs": {}, "params": {"a": "x", "b": 7}, "scheme": 1, "builder": "pki.ca",
            //  "builder_version": 1}: keys sorted length-first, as canonical CBOR requires (decoded by hand).
            "a6646e616d6562636166696e70757473a066706172616d73a26161617861620766736368656d6501\
             676275696c64657266706b692e63616f6275696c6465725f76657273696f6e01"
        );
        assert_eq!(d.store_name(), "db8n9hyzw7mzs767n6x6f1lzkfm9s71b-ca");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
