//! Signature verification and key-pair matching for `check`, with the same crates that make the keys.

use ::rsa::pkcs8::DecodePublicKey;
use ::rsa::signature::Verifier;

const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";

/// Verifies `sig` over `msg` with the SubjectPublicKeyInfo `spki`, for the signature algorithm `alg_oid`.
pub fn verify(spki: &[u8], alg_oid: &str, msg: &[u8], sig: &[u8]) -> Result<(), String> {
    match alg_oid {
        SHA256_WITH_RSA => {
            let key = ::rsa::PublicKey::from_public_key_der(spki)
                .map_err(|e| format!("RSA public key: {e}"))?;
            let vk = ::rsa::pkcs1v15::VerifyingKey::<::rsa::sha2::Sha256>::new(key);
            let sig =
                ::rsa::pkcs1v15::Signature::try_from(sig).map_err(|e| format!("signature: {e}"))?;
            vk.verify(msg, &sig)
                .map_err(|_| "signature does not verify".to_string())
        }
        ECDSA_WITH_SHA256 => {
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(spki)
                .map_err(|e| format!("P-256 public key: {e}"))?;
            let sig =
                p256::ecdsa::DerSignature::try_from(sig).map_err(|e| format!("signature: {e}"))?;
            vk.verify(msg, &sig)
                .map_err(|_| "signature does not verify".to_string())
        }
        ECDSA_WITH_SHA384 => {
            let vk = p384::ecdsa::VerifyingKey::from_public_key_der(spki)
                .map_err(|e| format!("P-384 public key: {e}"))?;
            let sig =
                p384::ecdsa::DerSignature::try_from(sig).map_err(|e| format!("signature: {e}"))?;
            vk.verify(msg, &sig)
                .map_err(|_| "signature does not verify".to_string())
        }
        other => Err(format!("unsupported signature algorithm {other}")),
    }
}

/// The SubjectPublicKeyInfo of a PKCS#8 private key (PEM), to match a key with its certificate.
pub fn public_of_private_pem(pem: &str) -> Result<Vec<u8>, String> {
    crate::keys::PrivateKey::from_pkcs8_pem(pem)
        .map(|k| k.public_key_spki_der())
        .map_err(|e| e.to_string())
}
