//! Tests for `hardway::keys`: the official C2SP det-keygen vectors, the RFC 6979 ECDSA
//! vector, the `Algorithm` names, PEM/SPKI encodings, and compatibility with `openssl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use hardway::keys::{Algorithm, KeyError, PrivateKey, generate_rsa_pkcs8_der};

/// The shared test helpers (for `unavailable`: one policy for missing tools in both test binaries).
mod util;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("fixture base64")
}

/// One vector: the fields of a flat JSON object, values as their text (strings unquoted).
type Vector = BTreeMap<String, String>;

/// Reads a det-keygen vector file: a JSON array of flat objects whose values are strings
/// without escapes or integers. (A tiny parser, so the crate needs no JSON dependency.)
fn fixture(name: &str) -> Vec<Vector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/c2sp-det-keygen")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read fixture");
    let body = text.trim();
    let body = body
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .expect("JSON array");
    let mut out = Vec::new();
    for obj in body.split('}') {
        let obj = obj.trim().trim_start_matches(',').trim();
        if obj.is_empty() {
            continue;
        }
        let obj = obj.strip_prefix('{').expect("JSON object");
        let mut map = Vector::new();
        for member in obj.split(',') {
            let (k, v) = member.split_once(':').expect("member");
            let k = k.trim().trim_matches('"');
            let v = v.trim();
            assert!(!v.contains('\\'), "escapes are not expected in vectors");
            map.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
        out.push(map);
    }
    assert!(!out.is_empty(), "{name} has vectors");
    out
}

fn field<'a>(v: &'a Vector, key: &str) -> &'a str {
    v.get(key).expect("field")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every RSA vector of the official det-keygen set. 8192-bit keys are slow in debug builds,
/// so they only run in release mode (`cargo test --release --test keys`).
#[test]
fn det_keygen_rsa_vectors() {
    let vectors = fixture("rsa.json");
    assert!(vectors.len() >= 20, "expected the full vector set");
    let mut checked = 0;
    for v in &vectors {
        let bits: usize = field(v, "bits").parse().expect("bits");
        if bits > 4096 && cfg!(debug_assertions) {
            eprintln!(
                "skipping {bits}-bit det-keygen vector in a debug build (run with --release)"
            );
            continue;
        }
        let seed = b64(field(v, "seed"));
        let want = b64(field(v, "private_key_pkcs8"));
        let got = generate_rsa_pkcs8_der(bits, &seed).expect("generate");
        assert_eq!(
            hex(&got),
            hex(&want),
            "RSA-{bits} seed {}",
            field(v, "seed")
        );
        checked += 1;
    }
    assert!(checked >= 20);
}

/// The same vectors through `PrivateKey::generate` for the sizes `Algorithm` names.
#[test]
fn det_keygen_rsa_vectors_via_private_key() {
    for v in fixture("rsa.json") {
        let alg = match field(&v, "bits") {
            "2048" => Algorithm::Rsa2048,
            "3072" => Algorithm::Rsa3072,
            "4096" => Algorithm::Rsa4096,
            _ => continue,
        };
        let seed = b64(field(&v, "seed"));
        let key = PrivateKey::generate(alg, &seed).expect("generate");
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.to_pkcs8_der(), b64(field(&v, "private_key_pkcs8")));
    }
}

/// Every P-256 and P-384 vector (P-224 and P-521 are not supported and skipped).
#[test]
fn det_keygen_ecdsa_vectors() {
    let mut checked = 0;
    for v in fixture("ecdsa.json") {
        let alg = match field(&v, "curve") {
            "secp256r1" => Algorithm::EcdsaP256,
            "secp384r1" => Algorithm::EcdsaP384,
            _ => continue,
        };
        let seed = b64(field(&v, "seed"));
        let key = PrivateKey::generate(alg, &seed).expect("generate");
        assert_eq!(
            hex(&key.to_pkcs8_der()),
            hex(&b64(field(&v, "private_key_pkcs8"))),
            "{alg} seed {}",
            field(&v, "seed")
        );
        checked += 1;
    }
    assert_eq!(
        checked, 11,
        "6 P-256 (one hits the d >= n retry) + 5 P-384 vectors"
    );
}

/// The P-256 retry path (spec step 11) is reached by this seed, which is in the vectors;
/// check it is really there so the retry stays covered.
#[test]
fn det_keygen_p256_retry_seed_is_covered() {
    let retry_seed = "tDL5vjCJBIApghhRBVmu1w=="; // b432f9be30890480298218510559aed7
    assert_eq!(hex(&b64(retry_seed)), "b432f9be30890480298218510559aed7");
    assert!(
        fixture("ecdsa.json")
            .iter()
            .any(|v| field(v, "curve") == "secp256r1" && field(v, "seed") == retry_seed)
    );
}

#[test]
fn generation_is_deterministic_and_seed_sensitive() {
    for alg in Algorithm::ALL {
        let a = PrivateKey::generate(alg, &[7u8; 32]).expect("generate");
        let b = PrivateKey::generate(alg, &[7u8; 32]).expect("generate");
        let c = PrivateKey::generate(alg, &[8u8; 32]).expect("generate");
        assert_eq!(a.to_pkcs8_der(), b.to_pkcs8_der(), "{alg}");
        assert_ne!(a.to_pkcs8_der(), c.to_pkcs8_der(), "{alg}");
        assert_eq!(a.sign(b"msg").expect("sign"), b.sign(b"msg").expect("sign"));
    }
}

#[test]
fn rejects_bad_inputs() {
    assert!(matches!(
        PrivateKey::generate(Algorithm::EcdsaP256, &[1u8; 15]),
        Err(KeyError::SeedTooShort { len: 15 })
    ));
    assert!(matches!(
        PrivateKey::generate(Algorithm::Rsa2048, &[1u8; 8]),
        Err(KeyError::SeedTooShort { len: 8 })
    ));
    for bits in [1024, 2040, 2056, 70_000] {
        assert!(
            matches!(
                generate_rsa_pkcs8_der(bits, &[1u8; 32]),
                Err(KeyError::UnsupportedRsaBits { .. })
            ),
            "{bits}"
        );
    }
}

#[derive(serde::Deserialize)]
struct Doc {
    alg: Algorithm,
}

#[test]
fn algorithm_names_round_trip() {
    let names = [
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "ecdsa-p256",
        "ecdsa-p384",
    ];
    assert_eq!(Algorithm::ALL.len(), names.len());
    for (alg, name) in Algorithm::ALL.into_iter().zip(names) {
        assert_eq!(alg.to_string(), name);
        assert_eq!(name.parse::<Algorithm>().expect("parse"), alg);
        // Serialized as a plain string (checked through CBOR: a text string header + name).
        let mut cbor = Vec::new();
        ciborium::into_writer(&alg, &mut cbor).expect("serialize");
        let mut want = vec![0x60 + name.len() as u8];
        want.extend_from_slice(name.as_bytes());
        assert_eq!(cbor, want);
        assert_eq!(
            ciborium::from_reader::<Algorithm, _>(&cbor[..]).expect("de"),
            alg
        );
        let doc: Doc = toml::from_str(&format!("alg = \"{name}\"")).expect("deserialize");
        assert_eq!(doc.alg, alg);
    }
    assert!("rsa-1024".parse::<Algorithm>().is_err());
    assert!(toml::from_str::<Doc>("alg = \"RSA-2048\"").is_err());
    let mut sorted = Algorithm::ALL;
    sorted.sort();
    assert_eq!(sorted, Algorithm::ALL);
}

#[test]
fn debug_does_not_print_key_material() {
    let key = PrivateKey::generate(Algorithm::EcdsaP256, &[3u8; 32]).expect("generate");
    let dbg = format!("{key:?}");
    assert!(dbg.contains("EcdsaP256"), "{dbg}");
    assert!(dbg.len() < 60, "{dbg}");
}

#[test]
fn pem_layout() {
    for alg in [Algorithm::Rsa2048, Algorithm::EcdsaP384] {
        let key = PrivateKey::generate(alg, &[5u8; 32]).expect("generate");
        let pem = key.to_pkcs8_pem();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN PRIVATE KEY-----"));
        assert_eq!(lines.last(), Some(&"-----END PRIVATE KEY-----"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(!pem.contains('\r'));
        let body = &lines[1..lines.len() - 1];
        for (i, line) in body.iter().enumerate() {
            if i + 1 < body.len() {
                assert_eq!(line.len(), 64);
            } else {
                assert!(!line.is_empty() && line.len() <= 64);
            }
        }
        assert_eq!(b64(&body.concat()), key.to_pkcs8_der());
    }
}

/// RFC 6979 appendix A.2.5: P-256, SHA-256, message "sample".
#[test]
fn ecdsa_p256_rfc6979_sample_vector() {
    let x = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    let r = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
    let s = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";
    let key = PrivateKey::from_ecdsa_scalar(Algorithm::EcdsaP256, &unhex(x)).expect("scalar");
    let sig = key.sign(b"sample").expect("sign");
    let (got_r, got_s) = parse_der_sig(&sig);
    assert_eq!(hex(&got_r), r.to_lowercase());
    assert_eq!(hex(&got_s), s.to_lowercase());
}

/// RFC 6979 appendix A.2.6: P-384, SHA-384, message "sample".
#[test]
fn ecdsa_p384_rfc6979_sample_vector() {
    let x = "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8\
             96D5724E4C70A825F872C9EA60D2EDF5";
    let r = "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C\
             81A648152E44ACF96E36DD1E80FABE46";
    let s = "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94F\
             A329C145786E679E7B82C71A38628AC8";
    let key = PrivateKey::from_ecdsa_scalar(Algorithm::EcdsaP384, &unhex(x)).expect("scalar");
    let sig = key.sign(b"sample").expect("sign");
    let (got_r, got_s) = parse_der_sig(&sig);
    assert_eq!(hex(&got_r), r.to_lowercase());
    assert_eq!(hex(&got_s), s.to_lowercase());
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Minimal parser for `SEQUENCE { INTEGER r, INTEGER s }` with short lengths; returns
/// `r` and `s` without DER's sign-padding zero byte.
fn parse_der_sig(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(der[0], 0x30);
    let (len, mut i) = if der[1] < 0x80 {
        (der[1] as usize, 2)
    } else {
        assert_eq!(der[1], 0x81);
        (der[2] as usize, 3)
    };
    assert_eq!(len + i, der.len(), "sequence length");
    let mut ints = Vec::new();
    while i < der.len() {
        assert_eq!(der[i], 0x02);
        let l = der[i + 1] as usize;
        let mut v = der[i + 2..i + 2 + l].to_vec();
        if v.len() > 1 && v[0] == 0 {
            assert!(v[1] >= 0x80, "minimal INTEGER encoding");
            v.remove(0);
        }
        ints.push(v);
        i += 2 + l;
    }
    assert_eq!(ints.len(), 2);
    let s = ints.pop().expect("s");
    let r = ints.pop().expect("r");
    (r, s)
}

#[test]
fn ecdsa_signatures_are_der_and_deterministic() {
    for alg in [Algorithm::EcdsaP256, Algorithm::EcdsaP384] {
        let key = PrivateKey::generate(alg, &[9u8; 32]).expect("generate");
        let a = key.sign(b"hello").expect("sign");
        assert_eq!(a, key.sign(b"hello").expect("sign"));
        assert_ne!(a, key.sign(b"hello!").expect("sign"));
        let (r, s) = parse_der_sig(&a);
        let width = if alg == Algorithm::EcdsaP256 { 32 } else { 48 };
        assert!(r.len() <= width && s.len() <= width);
    }
}

// ---- openssl compatibility -------------------------------------------------------------

/// `openssl` if present. When it is missing the test fails, naming the package, or with `HARDWAY_ALLOW_SKIP=1`
/// skips with a SKIP line (see `util::unavailable`).
fn openssl() -> Option<PathBuf> {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("openssl"));
    }
    util::unavailable("openssl (it does not run)", "Debian package openssl");
    None
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("spawn openssl");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write_key_files(dir: &Path, key: &PrivateKey) -> (PathBuf, PathBuf) {
    let key_pem = dir.join("key.pem");
    std::fs::write(&key_pem, key.to_pkcs8_pem()).expect("write key");
    let pub_der = dir.join("pub.der");
    std::fs::write(&pub_der, key.public_key_spki_der()).expect("write pub");
    (key_pem, pub_der)
}

#[test]
fn openssl_accepts_generated_keys() {
    let Some(openssl) = openssl() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for alg in Algorithm::ALL {
        let key = PrivateKey::generate(alg, &[42u8; 32]).expect("generate");
        let (key_pem, pub_der) = write_key_files(dir.path(), &key);
        run(Command::new(&openssl)
            .args(["pkey", "-check", "-noout", "-in"])
            .arg(&key_pem));
        // openssl derives the same SubjectPublicKeyInfo from the private key.
        let out = run(Command::new(&openssl)
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key_pem));
        assert_eq!(out.stdout, std::fs::read(&pub_der).expect("read"), "{alg}");
        // And re-encodes the key to exactly our PKCS#8 PEM.
        let out = run(Command::new(&openssl).args(["pkey", "-in"]).arg(&key_pem));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            key.to_pkcs8_pem(),
            "{alg}"
        );
    }
}

#[test]
fn openssl_verifies_signatures() {
    let Some(openssl) = openssl() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"tbsCertificate stand-in").expect("write msg");
    for (alg, digest) in [
        (Algorithm::Rsa2048, "-sha256"),
        (Algorithm::Rsa3072, "-sha256"),
        (Algorithm::EcdsaP256, "-sha256"),
        (Algorithm::EcdsaP384, "-sha384"),
    ] {
        let key = PrivateKey::generate(alg, &[11u8; 32]).expect("generate");
        let (_, pub_der) = write_key_files(dir.path(), &key);
        let sig = dir.path().join("sig");
        std::fs::write(&sig, key.sign(b"tbsCertificate stand-in").expect("sign"))
            .expect("write sig");
        let out = run(Command::new(&openssl)
            .args(["dgst", digest, "-keyform", "DER", "-verify"])
            .arg(&pub_der)
            .arg("-signature")
            .arg(&sig)
            .arg(&msg));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{alg}"
        );
    }
}

/// openssl's own RSA PKCS#1 v1.5 signature is deterministic, so it must equal ours.
#[test]
fn openssl_rsa_signature_matches_ours() {
    let Some(openssl) = openssl() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let key = PrivateKey::generate(Algorithm::Rsa2048, &[12u8; 32]).expect("generate");
    let (key_pem, _) = write_key_files(dir.path(), &key);
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"abc").expect("write msg");
    let out = run(Command::new(&openssl)
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key_pem)
        .arg(&msg));
    assert_eq!(out.stdout, key.sign(b"abc").expect("sign"));
}

#[test]
fn pkcs8_pem_reads_back_to_the_same_key() {
    for alg in Algorithm::ALL {
        let key = PrivateKey::generate(alg, &[7u8; 32]).expect("generate");
        let back = PrivateKey::from_pkcs8_pem(&key.to_pkcs8_pem()).expect("read back");
        assert_eq!(back.algorithm(), alg);
        assert_eq!(back.to_pkcs8_der(), key.to_pkcs8_der(), "{alg}");
        assert_eq!(
            back.sign(b"m").expect("sign"),
            key.sign(b"m").expect("sign"),
            "{alg}"
        );
    }
    assert!(matches!(
        PrivateKey::from_pkcs8_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        ),
        Err(KeyError::NotAKey(_))
    ));
    assert!(matches!(
        PrivateKey::from_pkcs8_der(b"junk"),
        Err(KeyError::NotAKey(_))
    ));
}
