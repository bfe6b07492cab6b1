//! Ed25519 (RFC 8032) signing keys in Nix's text form: a key is `name:base64(32 bytes)`, a signature
//! `name:base64(64 bytes)`. Ed25519 is deterministic, so a key made from the same 32 secret bytes signs the
//! same message with the same bytes. Used to sign export archives (`hardway export`/`import`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey as DalekSigning, VerifyingKey};
use zeroize::Zeroizing;

/// Why a key or signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("{what} {text:?} is not `name:base64` ({why})")]
    Format {
        what: &'static str,
        text: String,
        why: &'static str,
    },
    #[error("signed by key {signed:?}, but the key given is {given:?}")]
    OtherKey { signed: String, given: String },
    #[error(
        "the signature does not verify with key {0:?}: the signed text was changed, or another key signed it"
    )]
    Invalid(String),
}

/// A private signing key and its name.
pub struct SigningKey {
    name: String,
    key: DalekSigning,
}

/// A public key and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    key: VerifyingKey,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._+".contains(&b))
}

impl SigningKey {
    /// The key whose RFC 8032 private key is `secret` (32 bytes), named `name` (letters, digits, `-._+`).
    pub fn from_secret(name: &str, secret: &[u8; 32]) -> Result<SigningKey, SignError> {
        if !valid_name(name) {
            return Err(SignError::Format {
                what: "key name",
                text: name.to_string(),
                why: "use letters, digits and - . _ + only",
            });
        }
        Ok(SigningKey {
            name: name.to_string(),
            key: DalekSigning::from_bytes(secret),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// `name:base64(signature)` of `msg`.
    pub fn sign(&self, msg: &[u8]) -> String {
        let sig = Zeroizing::new(self.key.sign(msg).to_bytes());
        format!("{}:{}", self.name, STANDARD.encode(sig.as_slice()))
    }
}

/// Splits `name:base64` into the name and exactly `N` decoded bytes.
fn split<const N: usize>(what: &'static str, text: &str) -> Result<(String, [u8; N]), SignError> {
    let bad = |why| SignError::Format {
        what,
        text: text.to_string(),
        why,
    };
    let (name, b64) = text.trim().split_once(':').ok_or_else(|| bad("no `:`"))?;
    if !valid_name(name) {
        return Err(bad(
            "the name has characters other than letters, digits and - . _ +",
        ));
    }
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| bad("the part after `:` is not base64"))?;
    let bytes: [u8; N] = bytes
        .try_into()
        .map_err(|_| bad("the part after `:` has the wrong length"))?;
    Ok((name.to_string(), bytes))
}

impl PublicKey {
    /// Parses `name:base64(32 bytes)`.
    pub fn parse(text: &str) -> Result<PublicKey, SignError> {
        let (name, bytes) = split::<32>("public key", text)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| SignError::Format {
            what: "public key",
            text: text.trim().to_string(),
            why: "not an Ed25519 point",
        })?;
        Ok(PublicKey { name, key })
    }

    /// Checks `signature` (`name:base64`) over `msg`: the name must be this key's, and the signature valid
    /// under RFC 8032's strict rules.
    pub fn verify(&self, msg: &[u8], signature: &str) -> Result<(), SignError> {
        let (name, bytes) = split::<64>("signature", signature)?;
        if name != self.name {
            return Err(SignError::OtherKey {
                signed: name,
                given: self.name.clone(),
            });
        }
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key
            .verify_strict(msg, &sig)
            .map_err(|_| SignError::Invalid(self.name.clone()))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, STANDARD.encode(self.key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 8032 section 7.1, TEST 2 (one-byte message 0x72).
    #[test]
    fn rfc8032_test_2() {
        let secret: [u8; 32] =
            unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .try_into()
                .expect("32");
        let k = SigningKey::from_secret("t", &secret).expect("key");
        let public = k.public().to_string();
        assert_eq!(
            public,
            format!(
                "t:{}",
                STANDARD.encode(unhex(
                    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
                ))
            )
        );
        let sig = k.sign(&[0x72]);
        assert_eq!(
            sig,
            format!(
                "t:{}",
                STANDARD.encode(unhex(
                    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                     085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
                ))
            )
        );
        let p = PublicKey::parse(&public).expect("parse");
        assert_eq!(p.verify(&[0x72], &sig), Ok(()));
        assert_eq!(p.verify(&[0x73], &sig), Err(SignError::Invalid("t".into())));
        let other = SigningKey::from_secret("u", &[7; 32]).expect("key");
        assert!(matches!(
            p.verify(&[0x72], &other.sign(&[0x72])),
            Err(SignError::OtherKey { .. })
        ));
        assert!(matches!(
            PublicKey::parse("t:AAAA"),
            Err(SignError::Format { .. })
        ));
        assert!(matches!(
            PublicKey::parse("no-colon"),
            Err(SignError::Format { .. })
        ));
    }
}
