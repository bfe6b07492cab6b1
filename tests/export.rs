//! `hardway export` / `import`: a signed, deterministic archive for the air gap; every tampering refused
//! before anything enters the store, the recipes or out/.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A built seed cluster and its export `a.hwx` (+ `a.hwx.pub`).
fn exported() -> (Built, PathBuf) {
    let b = Built::seed_recipe();
    let archive = b.t.join("a.hwx");
    let out = ok(b.hardway("export").arg("-o").arg(&archive));
    let public = std::fs::read_to_string(b.t.join("a.hwx.pub")).expect("a.hwx.pub");
    assert!(
        public.starts_with("hardway-") && public.contains(':'),
        "{public}"
    );
    assert!(
        out.contains(public.trim()),
        "the public key is printed: {out}"
    );
    (b, archive)
}

fn import(archive: &Path, key: &str, into: &TestDir) -> std::process::Output {
    run(hardway()
        .current_dir(into.path())
        .arg("import")
        .arg(archive)
        .arg("--public-key")
        .arg(key))
}

/// The store paths (non-hidden entries) of a project's store.
fn store_paths(t: &TestDir) -> Vec<String> {
    match std::fs::read_dir(t.join("store")) {
        Ok(d) => d
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Asserts that an import was refused naming `what`, and left nothing behind.
fn refused(archive: &Path, key: &str, what: &[&str]) {
    let far = TestDir::new();
    let out = import(archive, key, &far);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    for w in what {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(store_paths(&far).is_empty(), "a store path entered: {err}");
    let staging = far.join("store/.tmp");
    if staging.exists() {
        assert_eq!(
            std::fs::read_dir(&staging).expect("tmp").count(),
            0,
            "staging left behind"
        );
    }
    assert!(!far.join("out").exists() && !far.join("recipes").exists());
}

#[test]
fn two_exports_of_one_build_are_byte_identical_and_import_without_a_seed() {
    let (b, archive) = exported();
    let again = b.t.join("b.hwx");
    ok(b.hardway("export").arg("-o").arg(&again));
    assert_eq!(
        std::fs::read(&archive).expect("a"),
        std::fs::read(&again).expect("b"),
        "exports differ"
    );
    // Another build of the same recipe and seed, in another directory: the same archive bytes.
    let (_other, other_archive) = exported();
    assert_eq!(
        std::fs::read(&archive).expect("a"),
        std::fs::read(&other_archive).expect("other"),
        "an export depends on where it was built"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&archive).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the archive holds private keys");
    // GNU tar reads it: MANIFEST, SIGNATURE, then the members.
    let listing = ok(Command::new("tar").arg("-tf").arg(&archive));
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(&names[..3], ["MANIFEST", "SIGNATURE", "recipe/r.lock"]);
    assert!(names.iter().any(|n| n.ends_with("/node1.tar.gz")));
    assert!(
        names
            .iter()
            .any(|n| n.ends_with(".tar.gz") && n.contains("-etcd-v3.3.5")),
        "{listing}"
    );

    let far = TestDir::new();
    let out = import(&archive, &b.t.join("a.hwx.pub").to_string_lossy(), &far);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!far.join("secrets").exists());
    assert_eq!(
        std::fs::read(far.join("recipes/r.toml")).expect("recipe"),
        std::fs::read(&b.recipe).expect("recipe")
    );
    assert_eq!(
        std::fs::read(far.join("recipes/r.lock")).expect("lock"),
        std::fs::read(b.t.join("r.lock")).expect("lock")
    );
    for host in ["master1", "master2", "node1", "node2", "lb"] {
        for f in [format!("{host}.tar.gz"), format!("{host}.manifest")] {
            assert_eq!(
                std::fs::read(far.join(&format!("out/{f}"))).expect("imported"),
                std::fs::read(b.out(&f)).expect("built"),
                "{f}"
            );
        }
    }
    // The imported store is honest, and a bundle checks against its manifest with no seed.
    ok(hardway().current_dir(far.path()).args(["store", "verify"]));
    ok(hardway().current_dir(far.path()).args([
        "verify",
        "--bundle",
        "out/node1.tar.gz",
        "--manifest",
        "out/node1.manifest",
    ]));
    // --check: every check, nothing written, no project needed.
    let auditor = TestDir::bare();
    let out = ok(hardway()
        .current_dir(auditor.path())
        .arg("import")
        .arg("--check")
        .arg(&archive)
        .arg("--public-key")
        .arg(b.t.join("a.hwx.pub")));
    assert!(out.contains("intact") && out.contains("node1"), "{out}");
    assert_eq!(std::fs::read_dir(auditor.path()).expect("dir").count(), 0);
    // Again: nothing new, nothing changed.
    let out = import(&archive, &b.t.join("a.hwx.pub").to_string_lossy(), &far);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(0 new)"));
    // One host only: its bundle and the etcd source only if it is a master.
    let one = b.t.join("node1.hwx");
    ok(b.hardway("export").arg("node1").arg("-o").arg(&one));
    let listing = ok(Command::new("tar").arg("-tf").arg(&one));
    assert!(
        listing.contains("/node1.tar.gz")
            && !listing.contains("master1")
            && !listing.contains("etcd-v3"),
        "{listing}"
    );
    let err = fails(
        b.hardway("export")
            .arg("nosuch")
            .arg("-o")
            .arg(b.t.join("x.hwx")),
    );
    assert!(err.contains("nosuch"), "{err}");
}

/// `archive`'s members extracted into a directory, and the member list of its MANIFEST in order.
fn unpack(archive: &Path, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("mkdir");
    ok(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir));
    std::fs::read_to_string(dir.join("MANIFEST"))
        .expect("MANIFEST")
        .lines()
        .filter_map(|l| {
            l.strip_prefix("member ")
                .map(|m| m.split(' ').nth(3).expect("path").to_string())
        })
        .collect()
}

/// GNU tar of exactly `names` from `dir`, in that order.
fn repack(dir: &Path, names: &[String], to: &Path) {
    ok(Command::new("tar")
        .arg("-cf")
        .arg(to)
        .arg("-C")
        .arg(dir)
        .arg("--no-recursion")
        .args(names));
}

#[test]
fn every_tampering_is_refused_naming_the_member_before_anything_enters_the_store() {
    let (b, archive) = exported();
    let key = std::fs::read_to_string(b.t.join("a.hwx.pub"))
        .expect("key")
        .trim()
        .to_string();
    let bytes = std::fs::read(&archive).expect("archive");
    let t = TestDir::new();
    // The untouched archive imports (so each refusal below is the tampering's).
    let ok_far = TestDir::new();
    assert!(import(&archive, &key, &ok_far).status.success());

    // A wrong key: another name, or the right name with other key bytes (RFC 8032's test 1 public key).
    let (name, _) = key.split_once(':').expect("name:base64");
    refused(
        &archive,
        &format!("other-1:{}", key.split_once(':').expect("k").1),
        &["SIGNATURE", "other-1"],
    );
    refused(
        &archive,
        &format!("{name}:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
        &["SIGNATURE", "does not verify"],
    );
    refused(&archive, "not-a-key", &["--public-key"]);

    // One byte flipped in a member's data (the recipe's text, found in the archive).
    let recipe = std::fs::read(&b.recipe).expect("recipe");
    let at = bytes
        .windows(recipe.len())
        .position(|w| w == recipe.as_slice())
        .expect("recipe in archive");
    let mut flipped = bytes.clone();
    flipped[at + recipe.len() / 2] ^= 0x20;
    let f = t.join("flipped.hwx");
    std::fs::write(&f, &flipped).expect("write");
    refused(&f, &key, &["recipe/r.toml", "SHA-256"]);
    let out = run(hardway()
        .current_dir(t.path())
        .args(["import", "--check"])
        .arg(&f)
        .arg("--public-key")
        .arg(&key));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("recipe/r.toml"),
        "--check accepted it: {err}"
    );

    // One byte flipped in a bundle (a member inside a store path).
    let node1 = std::fs::read(b.out("node1.tar.gz")).expect("bundle");
    let at = bytes
        .windows(64)
        .position(|w| w == &node1[100..164])
        .expect("bundle in archive");
    let mut flipped = bytes.clone();
    flipped[at + 10] ^= 1;
    std::fs::write(&f, &flipped).expect("write");
    refused(&f, &key, &["/node1.tar.gz", "SHA-256"]);

    // One byte flipped in the signed MANIFEST: the signature no longer verifies.
    let at = bytes
        .windows(8)
        .position(|w| w == b"\nmember ")
        .expect("manifest");
    let mut flipped = bytes.clone();
    flipped[at + 9] = if flipped[at + 9] == b'0' { b'1' } else { b'0' };
    std::fs::write(&f, &flipped).expect("write");
    refused(&f, &key, &["SIGNATURE", "does not verify"]);

    // Rebuilt with GNU tar from the extracted members: unsigned, a member missing, a member extra.
    let dir = t.join("x");
    let members = unpack(&archive, &dir);
    let all: Vec<String> = ["MANIFEST".to_string(), "SIGNATURE".to_string()]
        .into_iter()
        .chain(members.iter().cloned())
        .collect();
    let repacked = t.join("repacked.hwx");
    repack(&dir, &all, &repacked);
    assert!(
        import(&repacked, &key, &TestDir::new()).status.success(),
        "GNU tar's copy of the members is accepted"
    );

    let unsigned: Vec<String> = all.iter().filter(|n| *n != "SIGNATURE").cloned().collect();
    repack(&dir, &unsigned, &repacked);
    refused(&repacked, &key, &["unsigned", "recipe/r.lock"]);

    let bundle = members
        .iter()
        .find(|m| m.ends_with("/node2.tar.gz"))
        .expect("node2 bundle")
        .clone();
    let missing: Vec<String> = all.iter().filter(|n| **n != bundle).cloned().collect();
    repack(&dir, &missing, &repacked);
    refused(&repacked, &key, &[&bundle, "missing"]);

    std::fs::write(dir.join("store/extra"), "x").expect("extra");
    let mut extra = all.clone();
    extra.push("store/extra".to_string());
    repack(&dir, &extra, &repacked);
    refused(&repacked, &key, &["store/extra", "not listed"]);

    // A member whose mode was changed.
    let lock = dir.join("recipe/r.lock");
    std::fs::set_permissions(&lock, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod");
    repack(&dir, &all, &repacked);
    refused(&repacked, &key, &["recipe/r.lock", "mode"]);
}

#[test]
fn import_never_replaces_what_is_not_its_own() {
    let (b, archive) = exported();
    let key = b.t.join("a.hwx.pub").to_string_lossy().into_owned();
    let far = TestDir::new();
    std::fs::create_dir_all(far.join("recipes")).expect("mkdir");
    std::fs::write(far.join("recipes/r.toml"), "# someone else's recipe\n").expect("write");
    let out = import(&archive, &key, &far);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("recipes/r.toml") && err.contains("differs"),
        "{err}"
    );
    assert!(store_paths(&far).is_empty());
    std::fs::remove_file(far.join("recipes/r.toml")).expect("rm");
    std::fs::create_dir_all(far.join("out")).expect("mkdir");
    std::fs::write(far.join("out/node1.tar.gz"), "mine").expect("write");
    let out = import(&archive, &key, &far);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("out/node1.tar.gz"),
        "{err}"
    );
    assert!(store_paths(&far).is_empty() && !far.join("recipes/r.toml").exists());
    assert_eq!(
        std::fs::read(far.join("out/node1.tar.gz")).expect("mine"),
        b"mine"
    );
}
