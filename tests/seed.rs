//! The secret seed: creation, refusal of bad seeds, never created by read-only commands.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

#[test]
fn init_creates_a_private_seed_and_never_overwrites() {
    let t = TestDir::new();
    let seed = t.join("secrets/seed");
    ok(hardway()
        .current_dir(t.path())
        .arg("init")
        .arg("--seed-file")
        .arg(&seed));
    let meta = std::fs::metadata(&seed).expect("seed exists");
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir_mode = std::fs::metadata(t.join("secrets"))
        .expect("dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let before = std::fs::read(&seed).expect("read");
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("init")
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(&seed).expect("read"), before);
}

#[test]
fn two_inits_give_different_seeds() {
    let t = TestDir::new();
    ok(hardway()
        .current_dir(t.path())
        .args(["init", "--seed-file"])
        .arg(t.join("a")));
    ok(hardway()
        .current_dir(t.path())
        .args(["init", "--seed-file"])
        .arg(t.join("b")));
    assert_ne!(
        std::fs::read(t.join("a")).expect("a"),
        std::fs::read(t.join("b")).expect("b")
    );
}

#[test]
fn build_creates_a_seed_only_with_init_seed_and_show_never_does() {
    let t = TestDir::new();
    let recipe = t.seed_recipe();
    let seed = t.join("s/seed");
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("show")
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(err.contains("hardway init"), "{err}");
    assert!(!seed.exists(), "show must not create a seed");
    // Without --init-seed, build fails naming where it looked and how to make one, and writes nothing.
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(
        err.contains(&seed.display().to_string())
            && err.contains("hardway init")
            && err.contains("--init-seed"),
        "{err}"
    );
    assert!(!seed.exists(), "build without --init-seed made a seed");
    assert!(!t.join("store").exists() && !t.join("out").exists());
    let out = run(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg("--init-seed")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("created a new secret seed") && stderr.contains("BACK IT UP"),
        "{stderr}"
    );
    let first = std::fs::read(&seed).expect("seed made");
    // --init-seed again keeps the seed it made (nothing is rebuilt) and says nothing about a new one.
    let out = run(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg("--init-seed")
        .arg("--json")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("created a new secret seed"));
    assert_eq!(build_counts(&String::from_utf8_lossy(&out.stdout)).0, 0);
    assert_eq!(std::fs::read(&seed).expect("seed"), first);
    // The environment variable works like the flag.
    let out = ok(hardway()
        .current_dir(t.path())
        .arg("show")
        .arg(&recipe)
        .env("HARDWAY_SEED_FILE", &seed));
    assert!(out.contains("built"), "{out}");
}

#[test]
fn refuses_a_seed_readable_by_others() {
    let t = TestDir::new();
    let seed = t.test_seed();
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(t.seed_recipe())
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(
        err.contains("readable by group or others") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!t.join("store").exists(), "nothing may be written");
}

#[test]
fn refuses_a_seed_of_the_wrong_length() {
    let t = TestDir::new();
    let seed = t.join("short");
    std::fs::write(&seed, [7u8; 31]).expect("write");
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(t.seed_recipe())
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(
        err.contains("31 bytes") && err.contains("exactly 32"),
        "{err}"
    );
}

#[test]
fn seed_bytes_never_appear_in_output_or_store_names() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let bytes = std::fs::read(&seed).expect("seed");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = run(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(t.seed_recipe())
        .arg("--seed-file")
        .arg(&seed));
    assert!(out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(&hex[..16]), "seed leaked into output");
    for (name, (_, content)) in snapshot(&t.join("store")) {
        assert!(!name.contains(&hex[..16]));
        assert!(
            !content.windows(32).any(|w| w == bytes.as_slice()),
            "raw seed stored in {name}"
        );
    }
}

#[test]
fn unwritable_store_is_a_clear_error() {
    let t = TestDir::new();
    let seed = t.test_seed();
    std::fs::write(t.join("afile"), "x").expect("write");
    // Root ignores permission bits, so make the store's parent a regular file instead.
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(t.seed_recipe())
            .arg("--seed-file")
            .arg(&seed)
            .arg("--store")
            .arg(t.join("afile/store")),
    );
    assert!(err.contains("afile/store"), "{err}");
}
