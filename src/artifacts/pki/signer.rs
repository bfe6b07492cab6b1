//! rcgen's [`SigningKey`] over the project's deterministic [`PrivateKey`]: rcgen lays out the DER, our keys sign.
//!
//! rcgen is used without ring or aws-lc (whose ECDSA signatures are randomised), so it has no key type of its
//! own: [`Signer`] supplies the public key and the signature. RSA signs with PKCS#1 v1.5 + SHA-256 (at every
//! modulus size), ECDSA P-256 with SHA-256 and P-384 with SHA-384, nonces by RFC 6979.

use der::Decode as _;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use sha2::Digest as _;

use super::PkiError;
use crate::keys::{Algorithm, PrivateKey};

/// A [`PrivateKey`] as rcgen's signer and public-key source.
pub struct Signer<'a> {
    key: &'a PrivateKey,
    /// The subjectPublicKey BIT STRING's contents (RSAPublicKey DER, or the uncompressed EC point).
    public_key: Vec<u8>,
}

impl<'a> Signer<'a> {
    /// Wraps `key`; fails if rcgen would re-encode its public key differently from the key's own SPKI.
    pub fn new(key: &'a PrivateKey) -> Result<Signer<'a>, PkiError> {
        let spki_der = key.public_key_spki_der();
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(|e| {
            PkiError::PublicKey {
                algorithm: key.algorithm(),
                reason: e.to_string(),
            }
        })?;
        let public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| PkiError::PublicKey {
                algorithm: key.algorithm(),
                reason: "not a whole number of bytes".to_string(),
            })?
            .to_vec();
        let signer = Signer { key, public_key };
        // rcgen writes the SPKI from `algorithm()` and `der_bytes()`: it must be the key's own, byte for byte.
        if signer.subject_public_key_info() != spki_der {
            return Err(PkiError::PublicKey {
                algorithm: key.algorithm(),
                reason: "rcgen encodes it differently from the key itself".to_string(),
            });
        }
        Ok(signer)
    }

    /// The subject key identifier: RFC 7093 section 2 method 1, the leftmost 160 bits of the SHA-256 of the
    /// subjectPublicKey bits (tag, length and unused-bits octet excluded).
    pub fn key_identifier(&self) -> Vec<u8> {
        sha2::Sha256::digest(&self.public_key)[..20].to_vec()
    }
}

impl PublicKeyData for Signer<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        signature_algorithm(self.key.algorithm())
    }
}

impl SigningKey for Signer<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // rcgen's error type has no variant for a foreign signer; RemoteKeyError is the one meant for it.
        self.key.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// The X.509 signature algorithm our keys sign with.
fn signature_algorithm(alg: Algorithm) -> &'static SignatureAlgorithm {
    match alg {
        Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        Algorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcgen_reencodes_every_public_key_exactly() {
        for alg in [
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
            Algorithm::Rsa2048,
        ] {
            let key = PrivateKey::generate(alg, &[7; 32]).expect("key");
            let signer = Signer::new(&key).expect("same SPKI");
            assert_eq!(signer.key_identifier().len(), 20);
        }
    }
}
