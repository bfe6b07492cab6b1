//! etcd's certificates in the kubeadm layout (`[etcd] pki = "kubeadm"`): what the plan adds (and leaves alone),
//! which host names the recipe then refuses, and what `hardway check` audits. The certificates' bytes are
//! planned in `src/artifacts/pki` (unit tests there cover names, issuers, SANs and key tables).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::Digest as _;

use crate::util::*;

/// etcd's certificates in the kubeadm layout of the seed recipe, in plan order.
const ETCD_CERTS: [&str; 6] = [
    "etcd-ca",
    "etcd-server-master1",
    "etcd-peer-master1",
    "etcd-server-master2",
    "etcd-peer-master2",
    "apiserver-etcd-client",
];

/// `text` (a recipe whose `[etcd]` names no layout) with `pki = LAYOUT` added to its `[etcd]` section.
fn with_layout(text: &str, layout: &str) -> String {
    let mut out = String::new();
    let mut added = 0;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("sha256 = ") {
            out.push_str(&format!("pki = \"{layout}\"\n"));
            added += 1;
        }
    }
    assert_eq!(
        added, 1,
        "the recipe's [etcd] sha256 line changed: update with_layout"
    );
    out
}

/// The seed recipe (with the tests' stand-in etcd tarball) in the kubeadm layout.
fn kubeadm_text() -> String {
    with_layout(&seed_text(), "kubeadm")
}

/// `hardway show` of `text` as (derivation name, store name), in plan order.
fn show(text: &str) -> Vec<(String, String)> {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", text);
    ok(hardway()
        .current_dir(t.path())
        .arg("show")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed))
    .lines()
    .map(|l| {
        let store = l.split_whitespace().last().expect("store name").to_string();
        let name = store.split_once('-').expect("hash-name").1.to_string();
        (name, store)
    })
    .collect()
}

#[test]
fn kubeadm_plans_etcds_certificates_and_changes_no_other_certificate() {
    let tutorial = show(&seed_text());
    let kubeadm = show(&kubeadm_text());
    let names: Vec<&str> = kubeadm.iter().map(|(n, _)| n.as_str()).collect();
    for c in ETCD_CERTS {
        assert!(names.contains(&c), "{c} not planned: {names:?}");
        assert!(
            names.contains(&format!("{c}-key").as_str()),
            "{c}-key not planned"
        );
        assert!(
            !tutorial.iter().any(|(n, _)| n == c),
            "the tutorial layout plans no {c}"
        );
    }
    // The PKI comes first: every certificate and key of the tutorial layout, then etcd's, unchanged before them.
    let first_kubeconfig = tutorial
        .iter()
        .position(|(n, _)| n.ends_with("-kubeconfig"))
        .expect("a kubeconfig");
    assert_eq!(kubeadm[..first_kubeconfig], tutorial[..first_kubeconfig]);
    let etcd: Vec<&str> = kubeadm[first_kubeconfig..first_kubeconfig + 12]
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let expected: Vec<String> = ETCD_CERTS
        .iter()
        .flat_map(|c| [format!("{c}-key"), c.to_string()])
        .collect();
    assert_eq!(etcd, expected);
    // Kubeconfigs, the encryption config, the load balancer and the workers' files do not involve etcd's PKI.
    for (name, store) in &tutorial {
        let unchanged = name.ends_with("-kubeconfig")
            || name == "encryption-config"
            || name.starts_with("lb-")
            || name.starts_with("node");
        if unchanged {
            assert!(
                kubeadm.iter().any(|(_, s)| s == store),
                "{name} changed with the layout"
            );
        }
    }
    // The masters' files do: their overlays and bundles ship etcd's certificates.
    for host in ["master1", "master2"] {
        let store = |plan: &[(String, String)]| {
            plan.iter()
                .find(|(n, _)| *n == format!("{host}-bundle"))
                .expect("bundle")
                .1
                .clone()
        };
        assert_ne!(store(&tutorial), store(&kubeadm), "{host}-bundle");
    }
}

#[test]
fn the_tutorial_layout_named_explicitly_plans_the_same() {
    assert_eq!(
        show(&with_layout(&seed_text(), "tutorial")),
        show(&seed_text())
    );
}

#[test]
fn a_worker_named_like_an_etcd_certificate_is_refused_in_the_kubeadm_layout() {
    for name in ["etcd-ca", "etcd-peer-master2", "apiserver-etcd-client"] {
        let text = kubeadm_text().replace("name = \"node2\"", &format!("name = \"{name}\""));
        assert_rejected(
            &text,
            &format!("name = \"{name}\""),
            "hosts[3].name",
            &format!("a worker may not be named \"{name}\""),
        );
        // The tutorial layout has no such certificate: the name is free there.
        let tutorial = seed_text().replace("name = \"node2\"", &format!("name = \"{name}\""));
        assert!(show(&tutorial).iter().any(|(n, _)| n == name));
    }
    // A name that would be a member's certificate if that host were a master is fine on a worker.
    let text = kubeadm_text().replace("name = \"node2\"", "name = \"etcd-server-node1\"");
    assert!(
        show(&text)
            .iter()
            .any(|(n, _)| n == "etcd-server-node1-bundle")
    );
}

#[test]
fn etcds_keys_follow_the_algorithm_and_generation_tables() {
    let tables = "\n[pki.algorithms]\netcd-ca = \"ecdsa-p256\"\n\n[pki.generations]\netcd-server-master1 = 2\n";
    let base = show(&kubeadm_text());
    let tuned = show(&(kubeadm_text() + tables));
    let store = |plan: &[(String, String)], name: &str| {
        plan.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not planned"))
            .1
            .clone()
    };
    for changed in [
        "etcd-ca-key",
        "etcd-ca",
        "etcd-server-master1-key",
        "etcd-server-master1",
        "etcd-peer-master2",
        "apiserver-etcd-client",
    ] {
        assert_ne!(store(&base, changed), store(&tuned, changed), "{changed}");
    }
    for same in [
        "ca",
        "kubernetes",
        "node1",
        "etcd-peer-master1-key",
        "etcd-server-master2-key",
    ] {
        assert_eq!(store(&base, same), store(&tuned, same), "{same}");
    }
    // Without the kubeadm layout there is no such certificate to tune.
    assert_rejected(
        &(seed_text() + tables),
        "etcd-ca = \"ecdsa-p256\"",
        "pki.algorithms.etcd-ca",
        "no certificate is named \"etcd-ca\"",
    );
}

// ---- hardway check ---------------------------------------------------------------------------------------

fn check(b: &Built) -> (bool, String) {
    let out = run(b.hardway("check").args(["--date", "2027-06-01"]));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Makes a store file writable, replaces its bytes, and restores its mode (simulating corruption).
fn tamper(path: &Path, bytes: &[u8]) {
    let mode = std::fs::metadata(path).expect("meta").permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(path, bytes).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Adds a file entry for `bytes` at `/zz/<file>` to a manifest (once per manifest), keeping entries sorted.
fn ship(manifest: &Path, bytes: &[u8], file: &str) {
    let mut text = std::fs::read_to_string(manifest).expect("manifest");
    text.push_str(&format!(
        "d 0755 /zz\nf 0600 {} {} /zz/{file}\n",
        sha256_hex(bytes),
        bytes.len()
    ));
    tamper(manifest, text.as_bytes());
}

#[test]
fn a_clean_kubeadm_build_passes_check() {
    let b = Built::new(&kubeadm_text());
    let (ok, out) = check(&b);
    assert!(ok, "{out}");
    assert!(
        out.contains("checked 15 certificates, 7 kubeconfigs, 5 hosts: 0 errors, 1 warnings"),
        "{out}"
    );
}

#[test]
fn an_etcd_certificate_signed_by_the_cluster_ca_is_caught() {
    let b = Built::new(&kubeadm_text());
    let kubernetes = std::fs::read(b.out("kubernetes").join("kubernetes.pem")).expect("pem");
    tamper(
        &b.out("etcd-server-master1").join("etcd-server-master1.pem"),
        &kubernetes,
    );
    let (ok, out) = check(&b);
    assert!(!ok, "{out}");
    for finding in [
        "error: etcd-server-master1: is signed by the cluster CA: etcd's certificates must chain to etcd-ca",
        "error: etcd-server-master1: CN is \"kubernetes\"; the etcd member is \"master1\"",
        "error: etcd-server-master1: etcd-server-master1-key.pem does not match etcd-server-master1.pem",
    ] {
        assert!(out.contains(finding), "{finding}\n{out}");
    }
    assert!(
        !out.contains("SANs lack"),
        "kubernetes.pem covers master1: {out}"
    );
}

#[test]
fn a_member_certificate_without_its_names_is_caught() {
    let b = Built::new(&kubeadm_text());
    let other =
        std::fs::read(b.out("etcd-peer-master2").join("etcd-peer-master2.pem")).expect("pem");
    tamper(
        &b.out("etcd-peer-master1").join("etcd-peer-master1.pem"),
        &other,
    );
    let (ok, out) = check(&b);
    assert!(!ok, "{out}");
    for finding in [
        "error: etcd-peer-master1: CN is \"master2\"; the etcd member is \"master1\"",
        "error: etcd-peer-master1: SANs lack DNS name master1 (etcd's peer certificate on master1)",
        "error: etcd-peer-master1: SANs lack IP 10.128.15.221 (etcd's peer certificate on master1)",
    ] {
        assert!(out.contains(finding), "{finding}\n{out}");
    }
    // It still chains to the etcd CA.
    assert!(!out.contains("chain"), "{out}");
}

#[test]
fn the_etcd_cas_key_belongs_on_no_host_and_member_keys_on_their_member() {
    let b = Built::new(&kubeadm_text());
    let key = |base: &str| std::fs::read(b.out(base).join(format!("{base}-key.pem"))).expect("key");
    ship(
        &b.out("master1.manifest"),
        &key("etcd-ca"),
        "etcd-ca-key.pem",
    );
    ship(
        &b.out("master2.manifest"),
        &key("etcd-server-master1"),
        "server-key.pem",
    );
    ship(
        &b.out("node1.manifest"),
        &key("apiserver-etcd-client"),
        "client-key.pem",
    );
    let (ok, out) = check(&b);
    assert!(!ok, "{out}");
    for finding in [
        "error: master1: least privilege: receives the etcd CA's private key at /zz/etcd-ca-key.pem",
        "error: master2: least privilege: receives the etcd-server-master1 private key at /zz/server-key.pem",
        "error: node1: least privilege: receives the apiserver-etcd-client private key at /zz/client-key.pem",
    ] {
        assert!(out.contains(finding), "{finding}\n{out}");
    }
}

#[test]
fn etcd_trusting_the_cluster_ca_is_caught() {
    let b = Built::new(&kubeadm_text());
    let manifest = b.out("master1.manifest");
    let ca = std::fs::read(b.out("ca").join("ca.pem")).expect("ca");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text: String = text
        .lines()
        .map(|l| {
            if l.ends_with(" /etc/etcd/ca.pem") {
                format!("f 0644 {} {} /etc/etcd/ca.pem\n", sha256_hex(&ca), ca.len())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(
        text.contains(&sha256_hex(&ca)),
        "master1 ships /etc/etcd/ca.pem"
    );
    tamper(&manifest, text.as_bytes());
    let (ok, out) = check(&b);
    assert!(!ok, "{out}");
    assert!(
        out.contains("error: master1: /etc/etcd/ca.pem is not etcd-ca.pem"),
        "{out}"
    );
}

#[test]
fn the_tutorial_layout_names_etcd_when_the_api_server_certificate_lacks_a_master() {
    let b = Built::seed_recipe();
    let admin = std::fs::read(b.out("admin").join("admin.pem")).expect("admin");
    tamper(&b.out("kubernetes").join("kubernetes.pem"), &admin);
    let (ok, out) = check(&b);
    assert!(!ok, "{out}");
    for ip in ["10.128.15.221", "10.128.15.222", "127.0.0.1"] {
        let finding = format!(
            "error: kubernetes: SANs lack IP {ip} (etcd serves with kubernetes.pem there in the tutorial layout)"
        );
        assert!(out.contains(&finding), "{finding}\n{out}");
    }
    assert!(
        out.contains("error: kubernetes: SANs lack IP 10.32.0.1\n"),
        "not etcd's: {out}"
    );
}
