//! The PKI, checked by the real tools: openssl (chain, fields, keys, CSRs, mutual TLS) and cfssl certinfo.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::util::*;

/// Leaves of the seed recipe: base name, CN, O.
const LEAVES: [(&str, &str, &str); 8] = [
    ("admin", "admin", "system:masters"),
    (
        "kube-controller-manager",
        "system:kube-controller-manager",
        "system:kube-controller-manager",
    ),
    ("kube-proxy", "system:kube-proxy", "system:node-proxier"),
    (
        "kube-scheduler",
        "system:kube-scheduler",
        "system:kube-scheduler",
    ),
    ("kubernetes", "kubernetes", "Kubernetes"),
    ("service-account", "service-accounts", "Kubernetes"),
    ("node1", "system:node:node1", "system:nodes"),
    ("node2", "system:node:node2", "system:nodes"),
];

/// The API server's SANs for the seed recipe, in certificate order.
const API_SANS: [&str; 13] = [
    "IP Address:10.32.0.1",
    "IP Address:10.128.15.221",
    "DNS:master1",
    "IP Address:10.128.15.222",
    "DNS:master2",
    "IP Address:10.128.15.226",
    "DNS:lb",
    "IP Address:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
];

fn seed_recipe() -> String {
    seed_text()
}

/// Builds `recipe_text` in `t` with `seed` (store `store`, links `out`); returns the links directory.
fn build(t: &TestDir, recipe_text: &str, seed: &Path, store: &str, out: &str) -> PathBuf {
    let recipe = t.write(&format!("{out}.toml"), recipe_text);
    ok(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(seed)
        .args(["--store", store, "--out", out, "-j", "2"]));
    t.join(out)
}

/// `<out>/<base>/<base><suffix>`: a file of a certificate's store path.
fn file(out: &Path, base: &str, suffix: &str) -> PathBuf {
    out.join(base).join(format!("{base}{suffix}"))
}

/// Runs openssl; asserts success; returns stdout.
fn openssl(args: &[&str], paths: &[&Path]) -> String {
    let mut cmd = Command::new("openssl");
    match args.split_first() {
        // Certificate checks happen at a fixed moment inside the seed's validity windows, not today.
        Some((&"verify", rest)) => cmd.args(["verify", "-attime", VERIFY_AT]).args(rest),
        _ => cmd.args(args),
    };
    for p in paths {
        cmd.arg(p);
    }
    ok(&mut cmd)
}

/// One certificate field through `openssl x509 -noout <flag>`, lines trimmed and joined with " | ".
fn x509(cert: &Path, flags: &[&str]) -> String {
    let mut args = vec!["x509", "-noout"];
    args.extend_from_slice(flags);
    args.push("-in");
    normalise(&openssl(&args, &[cert]))
}

fn normalise(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn subject(o: &str, ou: &str, cn: &str) -> String {
    format!("subject=C = US, ST = Oregon, L = Portland, O = {o}, OU = {ou}, CN = {cn}")
}

/// The public key of a certificate and of a private key, as PEM.
fn public_keys(cert: &Path, key: &Path) -> (String, String) {
    (
        openssl(&["x509", "-noout", "-pubkey", "-in"], &[cert]),
        openssl(&["pkey", "-pubout", "-in"], &[key]),
    )
}

/// Hex of `openssl x509 -ext <ext>`'s value line (a key identifier), lowercase without colons.
fn key_id(cert: &Path, ext: &str) -> String {
    let text = openssl(&["x509", "-noout", "-ext", ext, "-in"], &[cert]);
    let value = text.lines().nth(1).expect("value line").trim();
    value
        .trim_start_matches("keyid:")
        .replace(':', "")
        .to_lowercase()
}

/// RFC 7093 method 1: SHA-256 of the subjectPublicKey bits, first 160 bits, as lowercase hex.
fn rfc7093_key_id(cert: &Path) -> String {
    let pem = openssl(&["x509", "-noout", "-pubkey", "-in"], &[cert]);
    let t = TestDir::new();
    let pem_path = t.write("pub.pem", &pem);
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&pem_path)
        .output()
        .expect("openssl");
    assert!(out.status.success());
    // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }
    let (tag, spki, _) = tlv(&out.stdout);
    assert_eq!(tag, 0x30);
    let (_, _, rest) = tlv(spki);
    let (tag, bits, _) = tlv(rest);
    assert_eq!((tag, bits[0]), (0x03, 0), "a BIT STRING of whole bytes");
    sha2::Sha256::digest(&bits[1..])[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One DER TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
    let (len, head) = if b[1] < 0x80 {
        (usize::from(b[1]), 2)
    } else {
        let n = usize::from(b[1] & 0x7f);
        (
            b[2..2 + n]
                .iter()
                .fold(0usize, |a, &x| (a << 8) | usize::from(x)),
            2 + n,
        )
    };
    (b[0], &b[head..head + len], &b[head + len..])
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

/// Every check of one certificate store path that needs no expectations about its subject.
fn check_files(out: &Path, base: &str) {
    let (cert, key, csr) = (
        file(out, base, ".pem"),
        file(out, base, "-key.pem"),
        file(out, base, ".csr"),
    );
    assert_eq!(mode(&cert), 0o644, "{base}.pem");
    assert_eq!(mode(&key), 0o600, "{base}-key.pem");
    assert_eq!(mode(&csr), 0o644, "{base}.csr");
    let key_text = std::fs::read_to_string(&key).expect("key");
    assert!(
        key_text.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{base}: PKCS#8"
    );
    openssl(&["pkey", "-check", "-noout", "-in"], &[&key]);
    let (from_cert, from_key) = public_keys(&cert, &key);
    assert_eq!(
        from_cert, from_key,
        "{base}: the key matches its certificate"
    );
    openssl(&["req", "-verify", "-noout", "-in"], &[&csr]);
    assert_eq!(
        openssl(&["req", "-noout", "-pubkey", "-in"], &[&csr]),
        from_cert,
        "{base}: the CSR holds the certificate's key"
    );
    assert_eq!(
        openssl(&["req", "-noout", "-subject", "-in"], &[&csr]),
        openssl(&["x509", "-noout", "-subject", "-in"], &[&cert]),
        "{base}: the CSR names the certificate's subject"
    );
    assert_eq!(
        key_id(&cert, "subjectKeyIdentifier"),
        rfc7093_key_id(&cert),
        "{base}: subject key identifier is RFC 7093 method 1"
    );
    let serial = x509(&cert, &["-serial"]);
    let hex = serial.trim_start_matches("serial=");
    assert!(
        hex.len() <= 40 && !hex.starts_with(['8', '9', 'A', 'B', 'C', 'D', 'E', 'F']),
        "{base}: serial {hex} must be positive and at most 20 octets"
    );
}

#[test]
fn seed_recipe_certificates_verify_and_match_the_tutorial_table() {
    if !have_tool("openssl") {
        return;
    }
    let t = TestDir::new();
    let seed = t.test_seed();
    let out = build(&t, &seed_recipe(), &seed, "store", "out");
    let ca = file(&out, "ca", ".pem");

    // The CA: self-signed, CA:TRUE critical, cert sign + CRL sign, 43800 hours from the issue date.
    openssl(&["verify", "-x509_strict", "-CAfile"], &[&ca, &ca]);
    check_files(&out, "ca");
    assert_eq!(
        x509(&ca, &["-subject"]),
        subject("Kubernetes", "CA", "Kubernetes")
    );
    assert_eq!(
        x509(&ca, &["-issuer"]),
        subject("Kubernetes", "CA", "Kubernetes").replace("subject=", "issuer=")
    );
    assert_eq!(
        x509(&ca, &["-ext", "basicConstraints,keyUsage,extendedKeyUsage"]),
        "X509v3 Key Usage: critical | Certificate Sign, CRL Sign | \
         X509v3 Basic Constraints: critical | CA:TRUE"
    );
    assert_eq!(
        x509(&ca, &["-startdate", "-enddate"]),
        "notBefore=Dec  1 00:00:00 2026 GMT | notAfter=Nov 30 00:00:00 2031 GMT"
    );
    let ca_key_id = key_id(&ca, "subjectKeyIdentifier");

    let mut serials = BTreeMap::new();
    for (base, cn, o) in LEAVES {
        let cert = file(&out, base, ".pem");
        openssl(&["verify", "-x509_strict", "-CAfile"], &[&ca, &cert]);
        check_files(&out, base);
        assert_eq!(
            x509(&cert, &["-subject"]),
            subject(o, "Kubernetes The Hard Way", cn),
            "{base}"
        );
        assert_eq!(
            x509(
                &cert,
                &["-ext", "basicConstraints,keyUsage,extendedKeyUsage"]
            ),
            "X509v3 Key Usage: critical | Digital Signature, Key Encipherment | \
             X509v3 Extended Key Usage: | TLS Web Server Authentication, TLS Web Client Authentication | \
             X509v3 Basic Constraints: critical | CA:FALSE",
            "{base}"
        );
        assert_eq!(
            x509(&cert, &["-startdate", "-enddate"]),
            "notBefore=Dec  1 00:00:00 2026 GMT | notAfter=Dec  1 00:00:00 2027 GMT",
            "{base}"
        );
        assert_eq!(
            key_id(&cert, "authorityKeyIdentifier"),
            ca_key_id,
            "{base}: authority key identifier is the CA's"
        );
        let sans = x509(&cert, &["-ext", "subjectAltName"]);
        let expected = match base {
            "kubernetes" => format!("X509v3 Subject Alternative Name: | {}", API_SANS.join(", ")),
            "node1" => {
                "X509v3 Subject Alternative Name: | DNS:node1, IP Address:10.128.15.223".into()
            }
            "node2" => {
                "X509v3 Subject Alternative Name: | DNS:node2, IP Address:10.128.15.224".into()
            }
            _ => String::new(),
        };
        assert_eq!(sans, expected, "{base}: SANs");
        let serial = x509(&cert, &["-serial"]);
        assert!(
            serials.insert(serial.clone(), base).is_none(),
            "{base}: serial {serial} repeats"
        );
    }

    // The key derivation's file is the one copied next to each certificate.
    let store = t.join("store");
    for (base, _, _) in LEAVES.iter().chain([&("ca", "", "")]) {
        let key_drv = std::fs::read_dir(&store)
            .expect("store")
            .map(|e| e.expect("entry").path())
            .find(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.get(33..) == Some(&format!("{base}-key")))
            })
            .unwrap_or_else(|| panic!("no {base}-key derivation in the store"));
        assert_eq!(
            std::fs::read(key_drv.join(format!("{base}-key.pem"))).expect("key"),
            std::fs::read(file(&out, base, "-key.pem")).expect("copy"),
            "{base}"
        );
    }
}

#[test]
fn cfssl_certinfo_reads_every_certificate() {
    if !have_tool("cfssl") {
        return;
    }
    let t = TestDir::new();
    let seed = t.test_seed();
    let out = build(&t, &seed_recipe(), &seed, "store", "out");
    for (base, cn, o) in LEAVES.iter().chain([&("ca", "Kubernetes", "Kubernetes")]) {
        let info = ok(Command::new("cfssl")
            .args(["certinfo", "-cert"])
            .arg(file(&out, base, ".pem")));
        let subject = section(&info, "\"subject\": {", "}");
        let ou = if *base == "ca" {
            "CA"
        } else {
            "Kubernetes The Hard Way"
        };
        for (field, value) in [
            ("common_name", *cn),
            ("organization", o),
            ("organizational_unit", ou),
            ("country", "US"),
            ("province", "Oregon"),
            ("locality", "Portland"),
        ] {
            assert!(
                subject.contains(&format!("\"{field}\": \"{value}\"")),
                "{base}: cfssl sees {field} {value:?}: {subject}"
            );
        }
        // cfssl lists DNS names, then IP addresses.
        let sans = if info.contains("\"sans\": [") {
            quoted(section(&info, "\"sans\": [", "]"))
        } else {
            Vec::new()
        };
        let expected: Vec<String> = match *base {
            "kubernetes" => {
                let names = API_SANS.iter().filter_map(|s| s.strip_prefix("DNS:"));
                let ips = API_SANS
                    .iter()
                    .filter_map(|s| s.strip_prefix("IP Address:"));
                names.chain(ips).map(String::from).collect()
            }
            "node1" => vec!["node1".into(), "10.128.15.223".into()],
            "node2" => vec!["node2".into(), "10.128.15.224".into()],
            _ => Vec::new(),
        };
        assert_eq!(sans, expected, "{base}: cfssl's SANs");
        assert!(
            info.contains("\"not_before\": \"2026-12-01T00:00:00Z\""),
            "{base}"
        );
    }
}

/// The text between `start` and the next `end` after it.
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    let len = text[from..].find(end).expect("section end");
    &text[from..from + len]
}

/// The double-quoted strings of a JSON fragment.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// An `openssl s_server` on 127.0.0.1, stopped (its whole process group) when dropped.
struct Server {
    _daemon: Daemon,
    port: u16,
}

impl Server {
    fn start(out: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let daemon = Daemon::listening(
            "openssl s_server",
            &addr,
            Command::new("openssl")
                .args(["s_server", "-accept", &addr])
                .args([
                    "-Verify",
                    "1",
                    "-verify_return_error",
                    "-attime",
                    VERIFY_AT,
                    "-www",
                    "-cert",
                ])
                .arg(file(out, "kubernetes", ".pem"))
                .arg("-key")
                .arg(file(out, "kubernetes", "-key.pem"))
                .arg("-CAfile")
                .arg(file(out, "ca", ".pem"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        Server {
            _daemon: daemon,
            port,
        }
    }
}

/// `openssl s_client` with a client certificate, sending one HTTP request; (success, stdout + stderr).
fn tls_client(port: u16, ca: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-attime",
            VERIFY_AT,
            "-quiet",
        ])
        .arg("-CAfile")
        .arg(ca)
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .expect("request");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("s_client hung for 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("HTTP/1.0 200 ok"),
        text,
    )
}

#[test]
fn mutual_tls_accepts_our_admin_and_refuses_another_seeds() {
    if !have_tool("openssl") {
        return;
    }
    let t = TestDir::new();
    let seed = t.test_seed();
    let out = build(&t, &seed_recipe(), &seed, "store", "out");
    let other_seed = t.join("other-seed");
    ok(hardway().arg("init").arg("--seed-file").arg(&other_seed));
    let other = build(&t, &seed_recipe(), &other_seed, "store2", "out2");

    let server = Server::start(&out);
    let ca = file(&out, "ca", ".pem");
    let (accepted, log) = tls_client(
        server.port,
        &ca,
        &file(&out, "admin", ".pem"),
        &file(&out, "admin", "-key.pem"),
    );
    assert!(accepted, "our admin certificate must be accepted:\n{log}");
    let (accepted, log) = tls_client(
        server.port,
        &ca,
        &file(&other, "admin", ".pem"),
        &file(&other, "admin", "-key.pem"),
    );
    assert!(
        !accepted,
        "another seed's admin certificate must be refused:\n{log}"
    );
    assert!(log.contains("unknown ca"), "refused for its issuer: {log}");
}

/// Store names (`<hash>-<name>`) the recipe plans, by derivation name, from `hardway show`.
fn planned(t: &TestDir, recipe_text: &str, seed: &Path) -> BTreeMap<String, String> {
    let recipe = t.write("show.toml", recipe_text);
    let text = ok(hardway()
        .current_dir(t.path())
        .arg("show")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(seed)
        .args(["--store", "show-store"]));
    text.lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|store_name| (store_name[33..].to_string(), store_name.to_string()))
        .collect()
}

/// Every PKI derivation name of the seed recipe: `<base>` and `<base>-key`.
fn pki_names() -> Vec<String> {
    LEAVES
        .iter()
        .map(|l| l.0)
        .chain(["ca"])
        .flat_map(|b| [b.to_string(), format!("{b}-key")])
        .collect()
}

/// The PKI derivations whose store paths differ between two plans.
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    pki_names()
        .into_iter()
        .filter(|n| a.get(n).expect("planned") != b.get(n).expect("planned"))
        .collect()
}

#[test]
fn rotating_one_key_changes_that_key_and_what_it_signs_only() {
    if !have_tool("openssl") {
        return;
    }
    let t = TestDir::new();
    let seed = t.test_seed();
    let base = seed_recipe();
    let before = planned(&t, &base, &seed);
    let with = |gens: &str| {
        base.replace(
            "[pki.subject]",
            &format!("[pki.generations]\n{gens}\n\n[pki.subject]"),
        )
    };

    let admin2 = with("admin = 2");
    let mut diff = changed(&before, &planned(&t, &admin2, &seed));
    diff.sort();
    assert_eq!(diff, ["admin", "admin-key"]);

    let ca2 = with("ca = 2");
    let mut diff = changed(&before, &planned(&t, &ca2, &seed));
    diff.sort();
    let mut expected: Vec<String> = LEAVES.iter().map(|l| l.0.to_string()).collect();
    expected.extend(["ca".to_string(), "ca-key".to_string()]);
    expected.sort();
    assert_eq!(
        diff, expected,
        "a new CA key re-issues every leaf, keeps leaf keys"
    );

    // The bytes agree: the rotated key is new, the other keys are untouched, the new leaf verifies.
    let out1 = build(&t, &base, &seed, "store", "out1");
    let out2 = build(&t, &admin2, &seed, "store", "out2");
    let read = |out: &Path, b: &str, s: &str| std::fs::read(file(out, b, s)).expect("read");
    assert_ne!(
        read(&out1, "admin", "-key.pem"),
        read(&out2, "admin", "-key.pem")
    );
    for (b, _, _) in LEAVES.iter().skip(1).chain([&("ca", "", "")]) {
        assert_eq!(
            read(&out1, b, "-key.pem"),
            read(&out2, b, "-key.pem"),
            "{b}"
        );
        assert_eq!(read(&out1, b, ".pem"), read(&out2, b, ".pem"), "{b}");
    }
    openssl(
        &["verify", "-x509_strict", "-CAfile"],
        &[&file(&out2, "ca", ".pem"), &file(&out2, "admin", ".pem")],
    );
    check_files(&out2, "admin");
}

#[test]
fn ecdsa_recipes_verify_with_openssl() {
    if !have_tool("openssl") {
        return;
    }
    for (alg, sig, key_text) in [
        ("ecdsa-p256", "ecdsa-with-SHA256", "prime256v1"),
        ("ecdsa-p384", "ecdsa-with-SHA384", "secp384r1"),
    ] {
        let t = TestDir::new();
        let seed = t.test_seed();
        let text = seed_recipe().replace(
            "algorithm = \"rsa-2048\"",
            &format!("algorithm = \"{alg}\""),
        );
        let out = build(&t, &text, &seed, "store", "out");
        let ca = file(&out, "ca", ".pem");
        openssl(&["verify", "-x509_strict", "-CAfile"], &[&ca, &ca]);
        check_files(&out, "ca");
        for (base, _, _) in LEAVES {
            let cert = file(&out, base, ".pem");
            openssl(&["verify", "-x509_strict", "-CAfile"], &[&ca, &cert]);
            check_files(&out, base);
            let text = openssl(&["x509", "-noout", "-text", "-in"], &[&cert]);
            assert!(
                text.contains(&format!("Signature Algorithm: {sig}")),
                "{alg} {base}"
            );
            assert!(
                text.contains(&format!("ASN1 OID: {key_text}")),
                "{alg} {base}"
            );
        }
    }
}

#[test]
fn users_extra_sans_and_algorithm_overrides() {
    if !have_tool("openssl") {
        return;
    }
    let t = TestDir::new();
    let seed = t.test_seed();
    let text = seed_recipe().replace(
        "[pki.subject]",
        "extra_sans = [\"api.example.com\", \"192.0.2.10\", \"kubernetes\", \"2001:db8::1\"]\n\n\
         [pki.algorithms]\nkubernetes = \"ecdsa-p256\"\nuser-ci = \"ecdsa-p384\"\n\n\
         [[pki.users]]\nname = \"ci\"\ngroups = [\"system:masters\"]\n\n\
         [[pki.users]]\nname = \"viewer.bot\"\n\n\
         [pki.subject]",
    );
    let out = build(&t, &text, &seed, "store", "out");
    let ca = file(&out, "ca", ".pem");
    for (base, subj, alg) in [
        (
            "user-ci",
            subject("system:masters", "Kubernetes The Hard Way", "ci"),
            "secp384r1",
        ),
        (
            "user-viewer.bot",
            "subject=C = US, ST = Oregon, L = Portland, OU = Kubernetes The Hard Way, CN = viewer.bot".into(),
            "",
        ),
        (
            "kubernetes",
            subject("Kubernetes", "Kubernetes The Hard Way", "kubernetes"),
            "prime256v1",
        ),
    ] {
        let cert = file(&out, base, ".pem");
        openssl(&["verify", "-x509_strict", "-CAfile"], &[&ca, &cert]);
        check_files(&out, base);
        assert_eq!(x509(&cert, &["-subject"]), subj, "{base}");
        let text = openssl(&["x509", "-noout", "-text", "-in"], &[&cert]);
        if alg.is_empty() {
            assert!(text.contains("rsaEncryption"), "{base} keeps the recipe's algorithm");
        } else {
            assert!(text.contains(&format!("ASN1 OID: {alg}")), "{base} is {alg}");
        }
        // Signed by the RSA CA whatever the leaf's own key.
        assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"), "{base}");
    }
    // Extra SANs follow the computed ones; one already present is not repeated.
    let sans = x509(
        &file(&out, "kubernetes", ".pem"),
        &["-ext", "subjectAltName"],
    );
    let mut expected: Vec<&str> = API_SANS.to_vec();
    expected.extend([
        "DNS:api.example.com",
        "IP Address:192.0.2.10",
        "IP Address:2001:DB8:0:0:0:0:0:1",
    ]);
    assert_eq!(
        sans,
        format!("X509v3 Subject Alternative Name: | {}", expected.join(", "))
    );
}

#[test]
fn bad_pki_fields_are_refused_with_their_place() {
    let pki =
        |extra: &str| seed_recipe().replace("[pki.subject]", &format!("{extra}\n\n[pki.subject]"));
    assert_rejected(
        &pki("extra_sans = [\"ok.example\", \"not a name\"]"),
        "extra_sans = [",
        "pki.extra_sans[1]",
        "neither an IP address nor a DNS name",
    );
    assert_rejected(
        &pki("extra_sans = [\"a.example\", \"a.example\"]"),
        "extra_sans = [",
        "pki.extra_sans[1]",
        "duplicate SAN",
    );
    assert_rejected(
        &pki("[pki.generations]\nadmin = 0"),
        "admin = 0",
        "pki.generations.admin",
        "positive integer",
    );
    assert_rejected(
        &pki("[pki.generations]\nnode9 = 2"),
        "node9 = 2",
        "pki.generations.node9",
        "no certificate is named",
    );
    assert_rejected(
        &pki("[pki.algorithms]\nkubernetes = \"dsa-1024\""),
        "kubernetes = \"dsa",
        "pki.algorithms.kubernetes",
        "unknown algorithm",
    );
    assert_rejected(
        &pki("[pki.algorithms]\nuser-ci = \"ecdsa-p256\""),
        "user-ci =",
        "pki.algorithms.user-ci",
        "no certificate is named",
    );
    assert_rejected(
        &pki("[[pki.users]]\nname = \"ci\"\ngroups = [\"system:masters\", \"dev\"]"),
        "groups",
        "pki.users[0].groups[1]",
        "at most one group",
    );
    assert_rejected(
        &pki("[[pki.users]]\nname = \"CI Bot\""),
        "CI Bot",
        "pki.users[0].name",
        "not a valid user name",
    );
    assert_rejected(
        &pki("[[pki.users]]\nname = \"ci\"\n\n[[pki.users]]\nname = \"ci\" # again"),
        "\"ci\" # again",
        "pki.users[1].name",
        "duplicate user",
    );
    assert_rejected(
        &seed_recipe().replace("name = \"node2\"", "name = \"kubernetes\""),
        "name = \"kubernetes\"",
        "hosts[3].name",
        "built-in certificate",
    );
    assert_rejected(
        &seed_recipe().replace("validity_hours = 8760", "validity_hours = 50000"),
        "validity_hours = 50000",
        "pki.validity_hours",
        "outlive their CA",
    );
    assert_rejected(
        &seed_recipe().replace("country = \"US\"", "country = \"USA\""),
        "country = \"USA\"",
        "pki.subject.country",
        "two-letter country code",
    );
}
