//! What `check` needs to know about a certificate, read with x509-cert.

use std::net::IpAddr;

use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};

use super::crypto;

const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// A certificate, summarised.
pub struct CertInfo {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub issuer_der: Vec<u8>,
    pub subject_der: Vec<u8>,
    pub dns_sans: Vec<String>,
    pub ip_sans: Vec<IpAddr>,
    pub is_ca: bool,
    pub key_cert_sign: bool,
    pub digital_signature: bool,
    pub key_encipherment: bool,
    pub server_auth: bool,
    pub client_auth: bool,
    pub not_before: i64,
    pub not_after: i64,
    pub spki_der: Vec<u8>,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    tbs_der: Vec<u8>,
    sig_alg: String,
    signature: Vec<u8>,
}

fn ds(d: &x509_cert::ext::pkix::name::DirectoryString) -> String {
    d.value().into_owned()
}

impl CertInfo {
    pub fn from_pem(pem: &str) -> Result<CertInfo, String> {
        let (label, der) = crate::keys::pem_decode(pem).ok_or("not PEM")?;
        if label != "CERTIFICATE" {
            return Err(format!("expected a CERTIFICATE, found {label:?}"));
        }
        let cert =
            Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let tbs = cert.tbs_certificate();
        let subject = tbs.subject();
        let common_name = subject
            .common_name()
            .map_err(|e| e.to_string())?
            .map(|d| ds(&d))
            .unwrap_or_default();
        let organizations = subject
            .iter()
            .filter(|a| a.oid == const_oid::db::rfc4519::O)
            .filter_map(|a| x509_cert::ext::pkix::name::DirectoryString::try_from(&a.value).ok())
            .map(|d| ds(&d))
            .collect();
        let mut info = CertInfo {
            common_name,
            organizations,
            issuer_der: tbs.issuer().to_der().map_err(|e| e.to_string())?,
            subject_der: subject.to_der().map_err(|e| e.to_string())?,
            dns_sans: Vec::new(),
            ip_sans: Vec::new(),
            is_ca: false,
            key_cert_sign: false,
            digital_signature: false,
            key_encipherment: false,
            server_auth: false,
            client_auth: false,
            not_before: tbs.validity().not_before.to_unix_duration().as_secs() as i64,
            not_after: tbs.validity().not_after.to_unix_duration().as_secs() as i64,
            spki_der: tbs
                .subject_public_key_info()
                .to_der()
                .map_err(|e| e.to_string())?,
            ski: None,
            aki: None,
            tbs_der: tbs.to_der().map_err(|e| e.to_string())?,
            sig_alg: cert.signature_algorithm().oid.to_string(),
            signature: cert.signature().raw_bytes().to_vec(),
        };
        let bad = |e: der::Error| format!("malformed extension: {e}");
        if let Some((_, san)) = tbs.get_extension::<SubjectAltName>().map_err(bad)? {
            for n in san.0 {
                match n {
                    GeneralName::DnsName(d) => info.dns_sans.push(d.to_string()),
                    GeneralName::IpAddress(o) => {
                        let b = o.as_bytes();
                        if let Ok(v4) = <[u8; 4]>::try_from(b) {
                            info.ip_sans.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                            info.ip_sans.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some((_, bc)) = tbs.get_extension::<BasicConstraints>().map_err(bad)? {
            info.is_ca = bc.ca;
        }
        if let Some((_, ku)) = tbs.get_extension::<KeyUsage>().map_err(bad)? {
            info.key_cert_sign = ku.key_cert_sign();
            info.digital_signature = ku.digital_signature();
            info.key_encipherment = ku.key_encipherment();
        }
        if let Some((_, eku)) = tbs.get_extension::<ExtendedKeyUsage>().map_err(bad)? {
            info.server_auth = eku.0.iter().any(|o| o.to_string() == SERVER_AUTH);
            info.client_auth = eku.0.iter().any(|o| o.to_string() == CLIENT_AUTH);
        }
        if let Some((_, ski)) = tbs.get_extension::<SubjectKeyIdentifier>().map_err(bad)? {
            info.ski = Some(ski.0.as_bytes().to_vec());
        }
        if let Some((_, aki)) = tbs.get_extension::<AuthorityKeyIdentifier>().map_err(bad)? {
            info.aki = aki.key_identifier.map(|k| k.as_bytes().to_vec());
        }
        Ok(info)
    }

    /// Verifies that `issuer` signed this certificate.
    pub fn verify_signed_by(&self, issuer: &CertInfo) -> Result<(), String> {
        if self.issuer_der != issuer.subject_der {
            return Err("issuer name is not the CA's subject".to_string());
        }
        if let (Some(aki), Some(ski)) = (&self.aki, &issuer.ski)
            && aki != ski
        {
            return Err(
                "authority key identifier is not the CA's subject key identifier".to_string(),
            );
        }
        crypto::verify(
            &issuer.spki_der,
            &self.sig_alg,
            &self.tbs_der,
            &self.signature,
        )
    }
}
