//! `hardway check`: a clean build passes; expiry, wrong identities, leaked secrets and corrupted bundles fail.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::*;

fn check(b: &Built, date: &str) -> (bool, String) {
    let out = run(b.hardway("check").args(["--date", date]));
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

#[test]
fn a_clean_build_passes_with_only_the_aescbc_warning() {
    let b = Built::seed_recipe();
    let (ok, out) = check(&b, "2027-06-01");
    assert!(ok, "{out}");
    assert!(
        out.contains("checked 9 certificates, 7 kubeconfigs, 5 hosts: 0 errors, 1 warnings"),
        "{out}"
    );
    assert!(
        out.contains("warning: encryption-config: aescbc is rated weak"),
        "{out}"
    );
}

#[test]
fn secretbox_draws_no_warning() {
    let text = seed_text().replace("\"aescbc\"", "\"secretbox\"");
    let b = Built::new(&text);
    let (ok, out) = check(&b, "2027-06-01");
    assert!(ok && out.contains("0 errors, 0 warnings"), "{out}");
}

#[test]
fn expiry_warns_within_30_days_and_fails_after() {
    let b = Built::seed_recipe();
    let (ok, out) = check(&b, "2027-11-15");
    assert!(ok, "warnings alone pass: {out}");
    assert!(
        out.contains("warning: node1: expires on 2027-12-01, within 30 days of 2027-11-15"),
        "{out}"
    );
    assert!(!out.contains("warning: ca:"), "the CA lasts 5 years: {out}");
    let (ok, out) = check(&b, "2027-12-02");
    assert!(!ok, "{out}");
    assert!(
        out.contains("error: kubernetes: expired on 2027-12-01"),
        "{out}"
    );
    let (ok, out) = check(&b, "2026-11-30");
    assert!(!ok && out.contains("not valid before 2026-12-01"), "{out}");
}

#[test]
fn a_wrong_node_certificate_is_caught() {
    let b = Built::seed_recipe();
    let node2 = std::fs::read(b.out("node2").join("node2.pem")).expect("node2");
    tamper(&b.out("node1").join("node1.pem"), &node2);
    let (ok, out) = check(&b, "2027-06-01");
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "error: node1: CN is \"system:node:node2\"; Kubernetes expects \"system:node:node1\""
        ),
        "{out}"
    );
    assert!(
        out.contains("error: node1: node1-key.pem does not match node1.pem"),
        "{out}"
    );
}

#[test]
fn a_secret_in_the_wrong_bundle_is_caught() {
    let b = Built::seed_recipe();
    let ca_key = std::fs::read(b.out("ca").join("ca-key.pem")).expect("ca key");
    let sha = ok(std::process::Command::new("sha256sum").arg(b.out("ca").join("ca-key.pem")));
    let manifest = b.out("node1.manifest");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    // Entries are sorted by path: the new one goes just before /var/lib/kubernetes.
    let line = format!(
        "f 0600 {} {} /var/lib/kubelet/zz-ca-key.pem\n",
        &sha[..64],
        ca_key.len()
    );
    let at = text
        .find("d 0755 /var/lib/kubernetes\n")
        .expect("kubernetes dir");
    text.insert_str(at, &line);
    tamper(&manifest, text.as_bytes());
    let (ok, out) = check(&b, "2027-06-01");
    assert!(!ok, "{out}");
    assert!(out.contains("error: node1: least privilege: receives the ca private key at /var/lib/kubelet/zz-ca-key.pem"), "{out}");
}

#[test]
fn a_corrupted_bundle_is_caught() {
    let b = Built::seed_recipe();
    let bundle = b.out("master1.tar.gz");
    let mut bytes = std::fs::read(&bundle).expect("bundle");
    bytes.push(0);
    tamper(&bundle, &bytes);
    let (ok, out) = check(&b, "2027-06-01");
    assert!(
        !ok && out.contains("error: master1: the bundle does not match its manifest"),
        "{out}"
    );
}

#[test]
fn check_before_build_says_what_to_do() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("check")
            .arg(t.seed_recipe())
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(err.contains("run `hardway build` first"), "{err}");
}

#[test]
fn a_users_key_in_a_bundle_is_caught() {
    let text = seed_text() + "\n[[pki.users]]\nname = \"ci\"\ngroups = [\"system:masters\"]\n";
    let b = Built::new(&text);
    let (ok, out) = check(&b, "2027-06-01");
    assert!(ok, "{out}");
    let key = b.out("user-ci").join("user-ci-key.pem");
    let len = std::fs::metadata(&key).expect("key").len();
    let sha = crate::util::ok(std::process::Command::new("sha256sum").arg(&key));
    let manifest = b.out("lb.manifest");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text.push_str(&format!("f 0600 {} {len} /var/ci-key.pem\n", &sha[..64]));
    tamper(&manifest, text.as_bytes());
    let (ok, out) = check(&b, "2027-06-01");
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "error: lb: least privilege: receives the user-ci private key at /var/ci-key.pem"
        ),
        "{out}"
    );
}

#[test]
fn bad_dates_and_seed_hex_are_usage_errors() {
    let b = Built::seed_recipe();
    for date in ["2026-02-30", "2026-13-01", "26-01-01", "yesterday"] {
        let out = run(b.hardway("check").args(["--date", date]));
        assert_eq!(out.status.code(), Some(2), "--date {date}: {out:?}");
    }
    let out = run(hardway().args(["keygen", "--algorithm", "ecdsa-p256", "--seed-hex", "zz"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn check_json_has_the_counts_and_findings() {
    let b = Built::seed_recipe();
    let out = run(b.hardway("check").args(["--date", "2027-06-01", "--json"]));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"], 0);
    assert!(v["certificates"].as_u64().expect("n") >= 9, "{v}");
    assert!(
        v["findings"][0]["finding"]
            .as_str()
            .expect("f")
            .contains("aescbc"),
        "{v}"
    );
}

/// An auditor without the root secret: `show` and `check` plan from the lock's seed fingerprint.
#[test]
fn show_and_check_need_only_the_locks_fingerprint_not_the_seed() {
    let b = Built::seed_recipe();
    let seed_bytes = std::fs::read(&b.seed).expect("seed");
    std::fs::remove_file(&b.seed).expect("the auditor has no seed");
    let audit = |sub: &str, args: &[&str]| {
        run(hardway()
            .current_dir(b.t.path())
            .arg(sub)
            .arg(&b.recipe)
            .args(args))
    };
    let out = audit("show", &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("r.lock") && stderr.contains("no secret read"),
        "{stderr}"
    );
    assert!(
        stdout.contains("built") && !stdout.contains("missing"),
        "{stdout}"
    );
    let out = audit("check", &["--date", "2027-06-01"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 errors"));
    // Nothing secret was needed, and nothing was created in its place.
    assert!(!b.t.join("secrets").exists() && !b.seed.exists());
    // Without the lock as well, it says what it needs.
    std::fs::rename(b.t.join("r.lock"), b.t.join("r.lock.away")).expect("mv");
    let out = audit("show", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no lock") && stderr.contains("--seed-file"),
        "{stderr}"
    );
    std::fs::rename(b.t.join("r.lock.away"), b.t.join("r.lock")).expect("mv");

    // Another seed: reported as another seed's build, not just as "not built".
    let other = b.t.join("other-seed");
    let mut bytes = seed_bytes;
    bytes[0] ^= 1;
    std::fs::write(&other, &bytes).expect("write");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let with_other = |sub: &str| {
        run(hardway()
            .current_dir(b.t.path())
            .arg(sub)
            .arg(&b.recipe)
            .arg("--seed-file")
            .arg(&other)
            .args(["--date", "2027-06-01"]))
    };
    let out = run(hardway()
        .current_dir(b.t.path())
        .arg("show")
        .arg(&b.recipe)
        .arg("--seed-file")
        .arg(&other));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        stderr.contains("another seed")
            && stderr.contains("not the one this recipe's lock was built with"),
        "{stderr}"
    );
    let out = with_other("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("another seed (fingerprint"),
        "{stderr}"
    );
}
