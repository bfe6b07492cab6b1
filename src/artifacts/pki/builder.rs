//! The `pki.key` and `pki.cert` builders.

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use zeroize::Zeroizing;

use super::{
    CertParams, INPUT_CA, INPUT_KEY, KeyParams, KeyRef, Name, PkiError, Profile, San, Signer,
};
use crate::engine::builder::{BuildContext, Builder, BuilderError};
use crate::engine::derivation::{Derivation, to_canonical_cbor};
use crate::engine::seed::Seed;
use crate::engine::store::{FileMode, OutputWriter};
use crate::keys::{PrivateKey, pem_encode};

/// `pki.key`: writes `<name>-key.pem`.
pub struct KeyBuilder;

impl Builder for KeyBuilder {
    const NAME: &'static str = "pki.key";
    const VERSION: u64 = 1;
    type Params = KeyParams;

    fn build(
        &self,
        p: KeyParams,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        ctx.check_seed(&p.seed)?;
        let key = derive_key(ctx.seed, &p.key_ref())?;
        out.file(
            &key_file(&p.name),
            key.to_pkcs8_pem().as_bytes(),
            FileMode::Secret,
        )
    }
}

/// `pki.cert`: writes `<name>.pem`, `<name>-key.pem` (the input key's bytes) and `<name>.csr`.
pub struct CertBuilder;

impl Builder for CertBuilder {
    const NAME: &'static str = "pki.cert";
    const VERSION: u64 = 1;
    type Params = CertParams;

    fn build(
        &self,
        p: CertParams,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        cert(p, ctx, out)
    }
}

fn cert(p: CertParams, ctx: &BuildContext, out: &mut OutputWriter) -> Result<(), BuilderError> {
    let drv = ctx.drv;
    ctx.check_seed(&p.seed)?;
    let (key, key_pem) = key_input(ctx, INPUT_KEY, &p.key)?;
    let subject_key = Signer::new(&key)?;
    let mut params = certificate_params(&p, &subject_key)?;
    // A CSR carries neither serial nor authority key identifier: make it before they are set.
    let csr = params
        .serialize_request(&subject_key)
        .map_err(PkiError::Csr)?;
    params.serial_number = Some(serial(drv));
    let cert = match &p.issuer {
        None => params.self_signed(&subject_key),
        Some(issuer) => {
            let (ca_key, _) = key_input(ctx, INPUT_CA, &issuer.key)?;
            let ca_signer = Signer::new(&ca_key)?;
            let mut issuer_params = CertificateParams::default();
            issuer_params.distinguished_name = distinguished_name(&issuer.subject)?;
            issuer_params.key_identifier_method =
                KeyIdMethod::PreSpecified(ca_signer.key_identifier());
            params.use_authority_key_identifier_extension = true;
            params.signed_by(&subject_key, &Issuer::new(issuer_params, &ca_signer))
        }
    }
    .map_err(PkiError::Sign)?;
    out.file(
        &format!("{}.pem", p.name),
        pem_encode("CERTIFICATE", cert.der()).as_bytes(),
        FileMode::Public,
    )?;
    out.file(&key_file(&p.name), &key_pem, FileMode::Secret)?;
    out.file(
        &format!("{}.csr", p.name),
        pem_encode("CERTIFICATE REQUEST", csr.der()).as_bytes(),
        FileMode::Public,
    )
}

fn key_file(name: &str) -> String {
    format!("{name}-key.pem")
}

/// Everything of the certificate but serial number and issuer.
fn certificate_params(p: &CertParams, key: &Signer) -> Result<CertificateParams, PkiError> {
    let mut c = CertificateParams::default();
    c.not_before = time(p.not_before)?;
    c.not_after = time(p.not_after)?;
    c.distinguished_name = distinguished_name(&p.subject)?;
    c.subject_alt_names = p
        .sans
        .iter()
        .map(|s| match s {
            San::Dns(d) => Ia5String::try_from(d.as_str())
                .map(SanType::DnsName)
                .map_err(|e| PkiError::San {
                    san: d.clone(),
                    reason: e.to_string(),
                }),
            San::Ip(ip) => {
                ip.parse()
                    .map(SanType::IpAddress)
                    .map_err(|e: std::net::AddrParseError| PkiError::San {
                        san: ip.clone(),
                        reason: e.to_string(),
                    })
            }
        })
        .collect::<Result<_, _>>()?;
    c.key_identifier_method = KeyIdMethod::PreSpecified(key.key_identifier());
    match p.profile {
        Profile::Ca => {
            c.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            c.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        Profile::Leaf => {
            // ExplicitNoCa writes CA:FALSE and, with it, the subject key identifier.
            c.is_ca = IsCa::ExplicitNoCa;
            c.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            c.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
    }
    Ok(c)
}

/// C, ST, L, O, OU, CN as Go writes them: PrintableString where the characters allow, else UTF8String.
fn distinguished_name(n: &Name) -> Result<DistinguishedName, PkiError> {
    if n.organization.len() > 1 {
        return Err(PkiError::Organizations {
            common_name: n.common_name.clone(),
            count: n.organization.len(),
        });
    }
    let mut dn = DistinguishedName::new();
    let org = n.organization.first().map_or("", String::as_str);
    for (ty, value) in [
        (DnType::CountryName, n.country.as_str()),
        (DnType::StateOrProvinceName, &n.state),
        (DnType::LocalityName, &n.locality),
        (DnType::OrganizationName, org),
        (DnType::OrganizationalUnitName, &n.organizational_unit),
        (DnType::CommonName, &n.common_name),
    ] {
        if value.is_empty() {
            continue;
        }
        let value = match PrintableString::try_from(value) {
            Ok(s) => DnValue::PrintableString(s),
            Err(_) => DnValue::Utf8String(value.to_string()),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

fn time(unix: i64) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(|_| PkiError::Validity(unix))
}

/// The serial number: the first 16 bytes of the certificate derivation's hash, top bit cleared (a positive
/// INTEGER of at most 16 octets, well under RFC 5280's 20), minimal encoding, never zero.
fn serial(drv: &Derivation) -> SerialNumber {
    let hash = drv.hash();
    let mut bytes = hash.as_bytes()[..16].to_vec();
    bytes[0] &= 0x7f;
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let mut bytes = bytes.split_off(first);
    if bytes.is_empty() {
        bytes.push(1);
    }
    SerialNumber::from_slice(&bytes)
}

/// Reads `<input>/<key name>-key.pem`, the key its derivation made, and checks it has the planned algorithm.
/// Returns the key and its file's bytes (copied unchanged into certificate outputs).
fn key_input(
    ctx: &BuildContext,
    role: &str,
    key: &KeyRef,
) -> Result<(PrivateKey, Zeroizing<Vec<u8>>), BuilderError> {
    let path = ctx.input(role)?.join(key_file(&key.name));
    let bytes = Zeroizing::new(ctx.read(&path)?);
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|_| crate::keys::KeyError::NotAKey("PEM text"))
        .and_then(PrivateKey::from_pkcs8_pem)
        .map_err(|source| PkiError::Key {
            path: path.clone(),
            source,
        })?;
    if parsed.algorithm() != key.algorithm {
        return Err(PkiError::Algorithm {
            path,
            found: parsed.algorithm(),
            wanted: key.algorithm,
        }
        .into());
    }
    Ok((parsed, bytes))
}

/// The private key `key` of the cluster with seed `seed`: det-keygen from a purpose-bound secret.
fn derive_key(seed: &Seed, key: &KeyRef) -> Result<PrivateKey, PkiError> {
    let c2sp_seed = Zeroizing::new(seed.derive(&purpose(key)));
    PrivateKey::generate(key.algorithm, c2sp_seed.as_slice()).map_err(|source| PkiError::Generate {
        algorithm: key.algorithm,
        name: key.name.clone(),
        source,
    })
}

/// Canonical CBOR `{kind: "key", name, algorithm, generation}`: what a key's secret is bound to.
fn purpose(key: &KeyRef) -> Vec<u8> {
    let text = |s: &str| ciborium::Value::Text(s.to_string());
    let purpose = ciborium::Value::Map(vec![
        (text("kind"), text("key")),
        (text("name"), text(&key.name)),
        (text("algorithm"), text(key.algorithm.name())),
        (
            text("generation"),
            ciborium::Value::Integer(key.generation.into()),
        ),
    ]);
    // Text and integer values only: canonical encoding cannot fail.
    to_canonical_cbor(&purpose).expect("plain purpose map")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_positive_and_at_most_16_octets() {
        for i in 0..64u32 {
            let d = Derivation::new("x", "pki.cert", 1, &i, std::collections::BTreeMap::new())
                .expect("drv");
            let s = serial(&d).to_bytes();
            assert!(!s.is_empty() && s.len() <= 16, "{s:?}");
            assert!(s[0] & 0x80 == 0 && s[0] != 0, "{s:?}");
        }
    }

    #[test]
    fn purpose_names_every_part_of_the_key_identity() {
        let k = KeyRef {
            name: "admin".into(),
            algorithm: crate::keys::Algorithm::Rsa2048,
            generation: 1,
        };
        let base = purpose(&k);
        let mut other = k.clone();
        other.generation = 2;
        assert_ne!(purpose(&other), base);
        other = k.clone();
        other.algorithm = crate::keys::Algorithm::EcdsaP256;
        assert_ne!(purpose(&other), base);
        other = k.clone();
        other.name = "admin2".into();
        assert_ne!(purpose(&other), base);
    }
}
