//! An honest store: a changed or deleted store file is detected (by every `build` through size and mtime,
//! `build --check-store` and `store verify` by re-hashing) and rebuilt, never reused; `gc` keeps what recipes
//! and out/ links reach.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::util::*;

fn path_of(b: &Built, suffix: &str) -> PathBuf {
    std::fs::read_dir(b.t.join("store"))
        .expect("store")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_dir() && p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no store path {suffix}"))
}

fn hw(b: &Built, args: &[&str]) -> std::process::Output {
    run(hardway()
        .current_dir(b.t.path())
        .args(args)
        .arg("--seed-file")
        .arg(&b.seed))
}

#[test]
fn a_modified_store_file_is_found_and_rebuilt_by_build_check_store() {
    let b = Built::seed_recipe();
    let cert = path_of(&b, "-admin").join("admin.pem");
    let good = std::fs::read(&cert).expect("read");
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&cert, b"not a certificate\n").expect("tamper");
    let recipe = b.recipe.to_string_lossy().into_owned();
    let out = hw(&b, &["build", "--json", "--check-store", &recipe]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"repaired\":1"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CORRUPT") && stderr.contains("-admin"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&cert).expect("read"),
        good,
        "the path was rebuilt"
    );
}

#[test]
fn a_plain_build_notices_deleted_and_changed_store_files_and_rebuilds_them() {
    let b = Built::seed_recipe();
    let recipe = b.recipe.to_string_lossy().into_owned();
    let cert = path_of(&b, "-admin").join("admin.pem");
    let good_cert = std::fs::read(&cert).expect("read");
    let kc = path_of(&b, "-node1-kubeconfig").join("node1.kubeconfig");
    let good_kc = std::fs::read(&kc).expect("read");
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&cert, b"not a certificate\n").expect("tamper");
    std::fs::remove_file(&kc).expect("delete");
    let out = hw(&b, &["build", "--json", &recipe]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"repaired\":2"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CORRUPT")
            && stderr.contains("-admin")
            && stderr.contains("-node1-kubeconfig"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&cert).expect("read"), good_cert);
    assert_eq!(std::fs::read(&kc).expect("read"), good_kc);
    // Same size, new mtime, same bytes (a `touch`): re-hashed, found intact, reused, not rebuilt.
    let f = std::fs::File::options()
        .write(true)
        .open(&kc)
        .expect("open");
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400))
        .expect("set mtime");
    drop(f);
    let out = hw(&b, &["build", "--json", &recipe]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"built\":0") && stdout.contains("\"repaired\":0"),
        "{stdout}"
    );
    // Same size, content changed, mtime put back by hand: only a re-hash (--check-store) can notice.
    let mtime = std::fs::metadata(&kc)
        .expect("meta")
        .modified()
        .expect("mtime");
    let mut bad = good_kc.clone();
    bad[0] ^= 1;
    std::fs::write(&kc, &bad).expect("tamper");
    std::fs::File::options()
        .write(true)
        .open(&kc)
        .expect("open")
        .set_modified(mtime)
        .expect("mtime");
    let out = hw(&b, &["build", "--json", &recipe]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"repaired\":0"));
    let out = hw(&b, &["build", "--json", "--check-store", &recipe]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"repaired\":1"));
    assert_eq!(std::fs::read(&kc).expect("read"), good_kc);
}

#[test]
fn store_verify_reports_and_repairs_changed_and_deleted_files() {
    let b = Built::seed_recipe();
    let cert = path_of(&b, "-admin").join("admin.pem");
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&cert, b"changed\n").expect("tamper");
    let kc = path_of(&b, "-node1-kubeconfig").join("node1.kubeconfig");
    std::fs::remove_file(&kc).expect("delete");
    let out = hw(&b, &["store", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("-admin: corrupt") && err.contains("-node1-kubeconfig: corrupt"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 corrupt"),
        "{out:?}"
    );
    let recipe = b.recipe.to_string_lossy().into_owned();
    let out = hw(&b, &["store", "verify", "--repair", &recipe]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(kc.is_file(), "the deleted file was rebuilt");
    let out = hw(&b, &["store", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The repaired store verifies against a fresh rebuild too.
    let out = hw(&b, &["verify", &recipe]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gc_keeps_what_is_reachable_and_removes_the_rest() {
    let b = Built::seed_recipe();
    let recipe = b.recipe.to_string_lossy().into_owned();
    // A second recipe (node1 rotated) leaves paths the first no longer reaches.
    let other = b.t.write(
        "other.toml",
        &seed_text().replace(
            "[pki.subject]",
            "[pki.generations]\nnode1 = 2\n\n[pki.subject]",
        ),
    );
    let other = other.to_string_lossy().into_owned();
    ok(hardway()
        .current_dir(b.t.path())
        .args(["build", &other, "--out", "out-other", "--seed-file"])
        .arg(&b.seed));
    let before = std::fs::read_dir(b.t.join("store")).expect("store").count();
    let out = hw(&b, &["gc", "--dry-run", &recipe]);
    assert!(out.status.success());
    let dry = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dry.contains("would remove") && dry.contains("-node1-key"),
        "{dry}"
    );
    assert_eq!(
        std::fs::read_dir(b.t.join("store")).expect("store").count(),
        before,
        "dry run removed"
    );
    // out-other's links (and their inputs: node1's new key) keep the other build: nothing of either goes.
    let out = hw(&b, &["gc", &recipe, "--out", "out-other"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("freed 0 store paths"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = hw(&b, &["gc", &recipe]);
    assert!(out.status.success());
    let removed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        removed.contains("removed") && removed.contains("-node1-key"),
        "{removed}"
    );
    // What the recipe reaches was kept: a build reuses everything.
    let out = hw(&b, &["build", "--json", &recipe]);
    let (built, _) = build_counts(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(built, 0, "gc removed a reachable path");
    // The other recipe's own paths are gone.
    let out = hw(&b, &["build", "--json", &other, "--out", "out-other"]);
    let (built, _) = build_counts(&String::from_utf8_lossy(&out.stdout));
    assert!(built >= 2, "gc kept unreachable paths: {built}");
}
