//! Deterministic private keys (C2SP det-keygen) and signing.
//!
//! [`PrivateKey::generate`] derives an RSA or ECDSA key from a secret seed with the
//! algorithms of <https://c2sp.org/det-keygen>, reproducing the spec's known-answer
//! vectors byte for byte. Keys export as PKCS#8 (DER/PEM) and SubjectPublicKeyInfo, and
//! sign deterministically: RSA with PKCS#1 v1.5 + SHA-256, ECDSA P-256/SHA-256 and
//! P-384/SHA-384 with RFC 6979 nonces and DER-encoded `(r, s)`.
//!
//! Layout: `drbg` (the spec's HMAC_DRBG), `ecdsa` and `rsa` (the two det-keygen
//! processes), `prime` (trial division and Miller–Rabin for RSA candidates) and `mont`
//! (the Montgomery arithmetic that makes RSA generation fast). The prime search only
//! decides *which* DRBG candidate is prime, so its speed tricks cannot change a key;
//! `tests/keys.rs` checks every official vector. `cargo bench --bench keygen` times it. `sign`: Ed25519
//! keys in Nix's `name:base64` form, for signed export archives.

mod drbg;
mod ecdsa;
mod mont;
mod prime;
mod rsa;
pub mod sign;

use std::fmt;
use std::str::FromStr;

use ::rsa::pkcs1v15::SigningKey as RsaSigningKey;
use ::rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ::rsa::sha2::Sha256;
use ::rsa::signature::{SignatureEncoding, Signer};
use zeroize::Zeroizing;

pub use self::rsa::{MAX_BITS as RSA_MAX_BITS, MIN_BITS as RSA_MIN_BITS};

/// Minimum seed length det-keygen accepts (128 bits).
pub const MIN_SEED_LEN: usize = 16;

/// Key algorithms a recipe can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// RSA, 2048-bit modulus, e = 65537.
    Rsa2048,
    /// RSA, 3072-bit modulus, e = 65537.
    Rsa3072,
    /// RSA, 4096-bit modulus, e = 65537.
    Rsa4096,
    /// ECDSA over NIST P-256, signing with SHA-256.
    EcdsaP256,
    /// ECDSA over NIST P-384, signing with SHA-384.
    EcdsaP384,
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Rsa2048,
        Algorithm::Rsa3072,
        Algorithm::Rsa4096,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
    ];

    /// The stable name (`rsa-2048`, …, `ecdsa-p384`) used in recipes and `Display`.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::Rsa3072 => "rsa-3072",
            Algorithm::Rsa4096 => "rsa-4096",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaP384 => "ecdsa-p384",
        }
    }

    /// The RSA modulus size, or `None` for ECDSA.
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            Algorithm::Rsa2048 => Some(2048),
            Algorithm::Rsa3072 => Some(3072),
            Algorithm::Rsa4096 => Some(4096),
            Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| KeyError::UnknownAlgorithm(s.to_owned()))
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Algorithm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Algorithm, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Errors from key generation, encoding and signing. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An algorithm name that is not one of [`Algorithm::ALL`].
    #[error(
        "unknown key algorithm {0:?} (expected rsa-2048, rsa-3072, rsa-4096, ecdsa-p256 or ecdsa-p384)"
    )]
    UnknownAlgorithm(String),
    /// det-keygen seeds must be at least 16 bytes.
    #[error("det-keygen seed is {len} bytes, need at least {MIN_SEED_LEN}")]
    SeedTooShort {
        /// Length of the rejected seed.
        len: usize,
    },
    /// RSA sizes must be multiples of 16 in `[2048, 65520]`.
    #[error("unsupported RSA modulus size {bits} (need a multiple of 16, 2048..=65520)")]
    UnsupportedRsaBits {
        /// The rejected size.
        bits: usize,
    },
    /// The ECDSA scalar drawn was zero or not below the group order (cryptographically
    /// negligible; suggests a bug or hardware fault).
    #[error("det-keygen ECDSA scalar out of range")]
    EcdsaScalarOutOfRange,
    /// The RSA prime search hit the FIPS 186-5 candidate bound (probability ~2^-83).
    #[error("det-keygen RSA prime search exhausted its candidate bound")]
    RsaPrimeSearchExhausted,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(&'static str),
    /// Bytes that are not a key this module reads; the text says what was expected, never a value.
    #[error("not a readable private key: {0}")]
    NotAKey(&'static str),
    /// An internal invariant failed; the text names the step, never a value.
    #[error("internal key error: {0}")]
    Internal(&'static str),
}

/// The concrete key.
#[derive(Clone)]
enum Inner {
    Rsa(Box<RsaSigningKey<Sha256>>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A private key generated deterministically from a seed. `Debug` shows only the algorithm.
#[derive(Clone)]
pub struct PrivateKey {
    alg: Algorithm,
    inner: Inner,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// det-keygen: the key of algorithm `alg` for `c2sp_seed` (at least 16 bytes; 32 is
    /// recommended). Always returns the same key for the same inputs.
    pub fn generate(alg: Algorithm, c2sp_seed: &[u8]) -> Result<PrivateKey, KeyError> {
        let inner = match alg {
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                let bits = alg.rsa_bits().ok_or(KeyError::Internal("rsa size"))?;
                let key = rsa::generate_components(bits, c2sp_seed)?;
                Inner::Rsa(Box::new(RsaSigningKey::new(key)))
            }
            Algorithm::EcdsaP256 => Inner::P256(ecdsa::generate_p256(c2sp_seed)?),
            Algorithm::EcdsaP384 => Inner::P384(ecdsa::generate_p384(c2sp_seed)?),
        };
        Ok(PrivateKey { alg, inner })
    }

    /// Wraps an existing ECDSA private scalar (big-endian, exactly 32 bytes for P-256 or
    /// 48 for P-384, in `[1, n-1]`). Used to check signing against published vectors.
    pub fn from_ecdsa_scalar(alg: Algorithm, scalar: &[u8]) -> Result<PrivateKey, KeyError> {
        let inner = match alg {
            Algorithm::EcdsaP256 if scalar.len() == 32 => Inner::P256(
                p256::ecdsa::SigningKey::from_slice(scalar)
                    .map_err(|_| KeyError::EcdsaScalarOutOfRange)?,
            ),
            Algorithm::EcdsaP384 if scalar.len() == 48 => Inner::P384(
                p384::ecdsa::SigningKey::from_slice(scalar)
                    .map_err(|_| KeyError::EcdsaScalarOutOfRange)?,
            ),
            _ => return Err(KeyError::EcdsaScalarOutOfRange),
        };
        Ok(PrivateKey { alg, inner })
    }

    /// Reads a PKCS#8 DER private key of one of the [`Algorithm`]s (as [`PrivateKey::to_pkcs8_der`] writes).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        if let Ok(k) = ::rsa::PrivateKey::from_pkcs8_der(der) {
            let alg = match ::rsa::traits::PublicKeyParts::size(&k) * 8 {
                2048 => Algorithm::Rsa2048,
                3072 => Algorithm::Rsa3072,
                4096 => Algorithm::Rsa4096,
                _ => {
                    return Err(KeyError::NotAKey(
                        "an RSA modulus of 2048, 3072 or 4096 bits",
                    ));
                }
            };
            return Ok(PrivateKey {
                alg,
                inner: Inner::Rsa(Box::new(RsaSigningKey::new(k))),
            });
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey {
                alg: Algorithm::EcdsaP256,
                inner: Inner::P256(k),
            });
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey {
                alg: Algorithm::EcdsaP384,
                inner: Inner::P384(k),
            });
        }
        Err(KeyError::NotAKey("PKCS#8 RSA, P-256 or P-384"))
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        match pem_decode(pem) {
            Some((label, der)) if label == "PRIVATE KEY" => PrivateKey::from_pkcs8_der(&der),
            _ => Err(KeyError::NotAKey("a PEM block labelled PRIVATE KEY")),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// PKCS#8 `PrivateKeyInfo`, DER (the format of the det-keygen vectors). For ECDSA the
    /// inner SEC1 key carries the public key and omits the curve parameters.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.try_pkcs8_der()
            .expect("PKCS#8 encoding of a well-formed key cannot fail")
            .to_vec()
    }

    fn try_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.inner {
            Inner::Rsa(k) => k.as_ref().as_ref().to_pkcs8_der(),
            Inner::P256(k) => k.to_pkcs8_der(),
            Inner::P384(k) => k.to_pkcs8_der(),
        }
        .map_err(|_| KeyError::Internal("PKCS#8 encoding"))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// PKCS#8 PEM: `-----BEGIN PRIVATE KEY-----`, base64 in 64-character lines, `\n` line
    /// endings and a trailing newline.
    pub fn to_pkcs8_pem(&self) -> String {
        let der = Zeroizing::new(self.to_pkcs8_der());
        pem_encode("PRIVATE KEY", &der)
    }

    /// The public key as a DER `SubjectPublicKeyInfo` (RSA: rsaEncryption with NULL
    /// parameters; ECDSA: id-ecPublicKey with the named curve and an uncompressed point).
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        let doc = match &self.inner {
            Inner::Rsa(k) => k.as_ref().as_ref().to_public_key().to_public_key_der(),
            Inner::P256(k) => k.verifying_key().to_public_key_der(),
            Inner::P384(k) => k.verifying_key().to_public_key_der(),
        };
        doc.expect("SPKI encoding of a well-formed key cannot fail")
            .as_bytes()
            .to_vec()
    }

    /// Signs `msg` deterministically: RSA with RSASSA-PKCS1-v1_5 and SHA-256 (raw signature
    /// of modulus length); ECDSA P-256 with SHA-256 and P-384 with SHA-384, RFC 6979 nonces,
    /// `ECDSA-Sig-Value` DER as X.509 embeds it.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Rsa(k) => {
                let sig = k
                    .try_sign(msg)
                    .map_err(|_| KeyError::Signing("RSA PKCS#1 v1.5"))?;
                Ok(sig.to_vec())
            }
            Inner::P256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|_| KeyError::Signing("ECDSA P-256"))?;
                Ok(sig.to_der().to_bytes().to_vec())
            }
            Inner::P384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|_| KeyError::Signing("ECDSA P-384"))?;
                Ok(sig.to_der().to_bytes().to_vec())
            }
        }
    }
}

/// det-keygen RSA for any modulus size the spec allows (multiple of 16, at least 2048),
/// returning the PKCS#8 DER private key.
pub fn generate_rsa_pkcs8_der(bits: usize, seed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let key = rsa::generate_components(bits, seed)?;
    let doc = key
        .to_pkcs8_der()
        .map_err(|_| KeyError::Internal("PKCS#8 encoding"))?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

/// The first RFC 7468 PEM block of `text`: its label and DER bytes; `None` when there is none.
pub fn pem_decode(text: &str) -> Option<(String, Zeroizing<Vec<u8>>)> {
    use base64::Engine as _;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let label = lines
        .next()?
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")?
        .to_string();
    let mut b64 = Zeroizing::new(String::new());
    for l in lines {
        if l == format!("-----END {label}-----") {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .ok()?;
            return Some((label, Zeroizing::new(der)));
        }
        b64.push_str(l);
    }
    None
}

/// RFC 7468 PEM with `\n` line endings and 64-character lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
