//! `hardway verify`, the lock and `build --locked`: byte-for-byte verification as a CI pipeline runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::*;

fn verify(b: &Built, extra: &[&str]) -> std::process::Output {
    run(hardway()
        .current_dir(b.t.path())
        .arg("verify")
        .arg(&b.recipe)
        .arg("--seed-file")
        .arg(&b.seed)
        .args(extra))
}

/// The store path (directory) whose name ends with `-<name>`.
fn store_path(b: &Built, name: &str) -> PathBuf {
    std::fs::read_dir(b.t.join("store"))
        .expect("store")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_dir() && p.to_string_lossy().ends_with(&format!("-{name}")))
        .unwrap_or_else(|| panic!("no store path for {name}"))
}

fn flip_byte(path: &Path, at: usize) {
    let mode = std::fs::metadata(path).expect("meta").permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod back");
}

#[test]
fn verify_passes_on_a_clean_build_and_writes_nothing_to_the_store() {
    let b = Built::seed_recipe();
    assert!(
        b.t.join("r.lock").is_file(),
        "build writes the lock next to the recipe"
    );
    let before = snapshot(&b.t.join("store"));
    let out = verify(&b, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["identical"], true);
    assert_eq!(json["locked"], true);
    assert!(json["rebuilt"].as_u64().expect("rebuilt") > 30, "{json}");
    assert_eq!(
        snapshot(&b.t.join("store")),
        before,
        "verify changed the store"
    );
}

#[test]
fn verify_names_the_derivation_and_file_of_a_flipped_byte() {
    let b = Built::seed_recipe();
    // A public file: the diff shows the lines.
    let cert = store_path(&b, "admin").join("admin.pem");
    flip_byte(&cert, 70);
    let out = verify(&b, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("first derivation (in dependency order): admin (")
            && err.contains("file: admin.pem"),
        "{err}"
    );
    assert!(
        err.contains("--- store") && err.contains("+++ fresh"),
        "{err}"
    );
    flip_byte(&cert, 70);
    // A secret: named, never shown.
    let key = store_path(&b, "node1-key").join("node1-key.pem");
    let secret = std::fs::read_to_string(&key).expect("key");
    flip_byte(&key, 40);
    let out = verify(&b, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["differences"][0]["derivation"], "node1-key");
    assert_eq!(json["differences"][0]["file"], "node1-key.pem");
    let detail = json["differences"][0]["detail"].as_str().expect("detail");
    assert!(detail.contains("secret: not shown"), "{detail}");
    let body: String = secret.lines().nth(1).expect("a base64 line").to_string();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(&body[..20]), "a secret's bytes were printed");
}

#[test]
fn verify_names_the_first_differing_member_of_a_bundle() {
    let b = Built::seed_recipe();
    // Replace node1's bundle by node2's: same layout, other files.
    let dir = store_path(&b, "node1-bundle");
    let other = store_path(&b, "node2-bundle").join("node2.tar.gz");
    let target = dir.join("node1.tar.gz");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::copy(&other, &target).expect("copy");
    let out = verify(&b, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node1-bundle") && err.contains("file: node1.tar.gz"),
        "{err}"
    );
    assert!(
        err.contains("first differing member: /var/lib/kubelet/"),
        "{err}"
    );
}

#[test]
fn build_locked_fails_on_a_change_that_alters_a_bundle_and_passes_otherwise() {
    let b = Built::seed_recipe();
    let lock = std::fs::read(b.t.join("r.lock")).expect("lock");
    let build = |text: &str| {
        std::fs::write(&b.recipe, text).expect("recipe");
        run(hardway()
            .current_dir(b.t.path())
            .args(["build", "--locked"])
            .arg(&b.recipe)
            .arg("--seed-file")
            .arg(&b.seed))
    };
    // admin-remote's kubeconfig ships to no host: the bundles, and so the lock, are unchanged.
    let harmless = seed_text().replace(
        "[pki]",
        "[kubeconfigs.servers]\nadmin-remote = \"https://10.128.15.221:6443\"\n\n[pki]",
    );
    let out = build(&harmless);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A new key for node1 changes node1's bundle.
    let rotated = seed_text().replace(
        "[pki.subject]",
        "[pki.generations]\nnode1 = 2\n\n[pki.subject]",
    );
    let links_before = std::fs::read_link(b.t.join("out/node1.tar.gz")).expect("link");
    let out = build(&rotated);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--locked") && err.contains("bundle node1: locked sha256"),
        "{err}"
    );
    assert!(!err.contains("bundle node2"), "only node1 differs: {err}");
    assert_eq!(
        std::fs::read(b.t.join("r.lock")).expect("lock"),
        lock,
        "the lock changed under --locked"
    );
    assert_eq!(
        std::fs::read_link(b.t.join("out/node1.tar.gz")).expect("link"),
        links_before,
        "out/ was relinked"
    );
}

#[test]
fn verify_bundle_against_its_manifest_needs_no_seed() {
    let b = Built::seed_recipe();
    let check = |bundle: &str, manifest: &str| {
        run(hardway()
            .current_dir(b.t.path())
            .args(["verify", "--bundle"])
            .arg(b.t.join(bundle))
            .arg("--manifest")
            .arg(b.t.join(manifest)))
    };
    assert_eq!(
        check("out/node1.tar.gz", "out/node1.manifest")
            .status
            .code(),
        Some(0)
    );
    let out = check("out/node1.tar.gz", "out/node2.manifest");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        check("out/nothing.tar.gz", "out/node1.manifest")
            .status
            .code(),
        Some(3)
    );
}

#[test]
fn verify_without_the_source_exits_3() {
    let b = Built::seed_recipe();
    let out = run(hardway()
        .current_dir(b.t.path())
        .arg("verify")
        .arg(&b.recipe)
        .arg("--seed-file")
        .arg(&b.seed)
        .arg("--store")
        .arg(b.t.join("empty-store")));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("etcd-v3.3.5-linux-amd64.tar.gz"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A builder whose output depends on its environment (here: how many builds ran before it in the process, as a
/// clock or a random number would): `verify` names that derivation first, and its differing file.
mod leaky_builder {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use hardway::engine::builder::{self, BuildContext, Builder, BuilderError, Registry};
    use hardway::engine::graph::Graph;
    use hardway::engine::scheduler::{Silent, realise};
    use hardway::engine::seed::Seed;
    use hardway::engine::store::{FileMode, OutputWriter, Store};

    static RUNS: AtomicU64 = AtomicU64::new(0);

    /// Writes `stable` (its text) and `stamp`: with `leak`, a counter (not reproducible); with an input, the
    /// input's stamp; else a constant.
    struct Leaky;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Params {
        text: String,
        leak: bool,
    }

    impl Builder for Leaky {
        const NAME: &'static str = "test.leaky";
        const VERSION: u64 = 1;
        type Params = Params;

        fn build(
            &self,
            p: Params,
            ctx: &BuildContext,
            out: &mut OutputWriter,
        ) -> Result<(), BuilderError> {
            out.file("stable", p.text.as_bytes(), FileMode::Public)?;
            let stamp = if p.leak {
                format!("run {}\n", RUNS.fetch_add(1, Ordering::SeqCst)).into_bytes()
            } else if let Ok(input) = ctx.input("in") {
                ctx.read(&input.join("stamp"))?
            } else {
                b"none\n".to_vec()
            };
            out.file("stamp", &stamp, FileMode::Public)
        }
    }

    fn drv(
        name: &str,
        leak: bool,
        inputs: BTreeMap<String, hardway::engine::derivation::DrvHash>,
    ) -> hardway::engine::derivation::Derivation {
        builder::derivation::<Leaky>(
            name,
            &Params {
                text: name.into(),
                leak,
            },
            inputs,
        )
        .expect("drv")
    }

    #[test]
    fn verify_names_the_derivation_whose_output_depends_on_the_environment() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let seed = Seed::from_bytes([9; 32]);
        let mut registry = Registry::new();
        registry.register(Leaky).expect("register");
        let mut g = Graph::default();
        g.add(drv("steady", false, BTreeMap::new()));
        let leaky = g.add(drv("leaky", true, BTreeMap::new()));
        g.add(drv(
            "user",
            false,
            BTreeMap::from([("in".to_string(), g.hash(leaky))]),
        ));
        realise(&g, &store, &seed, &registry, 1, &Silent).expect("build");
        let report = hardway::ops::verify::verify(
            &g,
            &store,
            &seed,
            &registry,
            1,
            dir.path(),
            &dir.path().join("none.lock"),
        )
        .expect("verify");
        assert!(!report.identical());
        let names: Vec<&str> = report
            .differences
            .iter()
            .map(|d| d.derivation.as_str())
            .collect();
        // The first difference in dependency order is the leaky builder itself, then what consumed it; the
        // reproducible one is not listed.
        assert_eq!(names, ["leaky", "user"]);
        let first = &report.differences[0];
        assert_eq!(first.file, "stamp", "the member that differs: {first:?}");
        assert_eq!(first.store_name, g.nodes[leaky].store_name);
    }
}
