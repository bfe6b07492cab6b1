//! Signature verification and key-pair matching for `check`, with the same crates that make the keys.

use ::rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
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
    let (label, der) = pem_decode(pem)?;
    if label != "PRIVATE KEY" {
        return Err(format!(
            "expected a PKCS#8 \"PRIVATE KEY\", found {label:?}"
        ));
    }
    if let Ok(k) = ::rsa::PrivateKey::from_pkcs8_der(&der) {
        return k
            .to_public_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| e.to_string());
    }
    if let Ok(k) = p256::SecretKey::from_pkcs8_der(&der) {
        return k
            .public_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| e.to_string());
    }
    if let Ok(k) = p384::SecretKey::from_pkcs8_der(&der) {
        return k
            .public_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| e.to_string());
    }
    Err("not an RSA, P-256 or P-384 PKCS#8 key".to_string())
}

/// Decodes one PEM block: (label, DER).
pub fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), String> {
    use base64::Engine as _;
    let mut lines = pem.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or("empty PEM")?;
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or("not PEM: no BEGIN line")?
        .to_string();
    let mut b64 = String::new();
    for l in lines {
        if l.starts_with("-----END ") {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("bad base64 in PEM: {e}"))?;
            return Ok((label, der));
        }
        b64.push_str(l);
    }
    Err("not PEM: no END line".to_string())
}
