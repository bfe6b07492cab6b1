//! The derivation engine: determinism across conditions, caching, crash safety, concurrent builders.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Store contents that are outputs or sidecars (not the lock files or temporary area).
fn store_outputs(store: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    snapshot(store)
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with(".locks") && !k.starts_with(".tmp") && !k.starts_with(".stat")
        })
        .collect()
}

/// `hardway build` run through `sh` so the umask can be set.
#[allow(clippy::too_many_arguments)]
fn build_in(
    cwd: &Path,
    umask: &str,
    tz: &str,
    lc: &str,
    jobs: &str,
    store: &str,
    seed: &Path,
    recipe: &Path,
) -> String {
    std::fs::create_dir_all(cwd).expect("cwd");
    ok(Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_hardway"))
        .args([
            "build",
            "--json",
            "-j",
            jobs,
            "--store",
            store,
            "--seed-file",
        ])
        .arg(seed)
        .arg(recipe)
        .current_dir(cwd)
        .env_remove("HARDWAY_STORE")
        .env("TZ", tz)
        .env("LC_ALL", lc)
        .env("LANG", lc))
}

#[test]
fn same_bytes_whatever_cwd_umask_tz_locale_and_jobs() {
    let a = TestDir::new();
    let b = TestDir::new();
    let seed_a = a.test_seed();
    let seed_b = b.test_seed();
    let store_a = a.join("store");
    build_in(
        &a.join("w"),
        "022",
        "UTC",
        "C",
        "1",
        store_a.to_str().expect("utf8"),
        &seed_a,
        &a.seed_recipe(),
    );
    // A relative store, deeper cwd, tight umask, other time zone and locale, more jobs.
    build_in(
        &b.join("x/y/z"),
        "077",
        "Asia/Kolkata",
        "fr_FR.UTF-8",
        "8",
        "../s2",
        &seed_b,
        &b.seed_recipe(),
    );
    let sa = store_outputs(&store_a);
    let sb = store_outputs(&b.join("x/y/s2"));
    assert!(sa.len() > 3, "nothing built? {:?}", sa.keys());
    assert_eq!(
        sa.keys().collect::<Vec<_>>(),
        sb.keys().collect::<Vec<_>>(),
        "store path names differ"
    );
    for (k, va) in &sa {
        assert_eq!(va, &sb[k], "{k} differs (mode or bytes)");
    }
}

#[test]
fn second_build_builds_nothing() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.seed_recipe();
    let build = || {
        ok(hardway()
            .current_dir(t.path())
            .args(["build", "--json"])
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed))
    };
    let first = build();
    let (built, reused) = build_counts(&first);
    assert!(built > 0);
    // The one source (etcd's tarball) was fetched into the store before the build, which then reuses it.
    assert!(first.contains("\"fetched\":1"), "{first}");
    assert_eq!(reused, 1);
    let second = build();
    let (built2, reused2) = build_counts(&second);
    assert_eq!((built2, reused2), (0, built + 1));
    assert!(second.contains("\"fetched\":0"), "{second}");
}

/// `show` lines as (state, store name).
fn show(t: &TestDir, recipe: &Path, seed: &Path) -> Vec<String> {
    ok(hardway()
        .current_dir(t.path())
        .arg("show")
        .arg(recipe)
        .arg("--seed-file")
        .arg(seed))
    .lines()
    .map(|l| l.split_whitespace().last().expect("name").to_string())
    .collect()
}

#[test]
fn changing_one_ip_rebuilds_only_what_depends_on_it() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let text = seed_text();
    let recipe = t.write("r.toml", &text);
    ok(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed));
    let before = show(&t, &recipe, &seed);
    let changed_text = text.replace("10.128.15.221", "10.128.15.231");
    assert_ne!(changed_text, text);
    std::fs::write(&recipe, changed_text).expect("write");
    let after = show(&t, &recipe, &seed);
    let new: Vec<_> = after.iter().filter(|n| !before.contains(n)).collect();
    assert!(!new.is_empty(), "a master's IP must change something");
    assert!(new.len() < after.len(), "not everything depends on one IP");
    let (built, reused) = build_counts(&ok(hardway()
        .current_dir(t.path())
        .args(["build", "--json"])
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)));
    assert_eq!(
        built as usize,
        new.len(),
        "rebuilt {built}, expected exactly {:?}",
        new
    );
    assert_eq!(reused as usize, after.len() - new.len());
}

/// A tiny deterministic generator for kill moments (tests must be repeatable too).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Every output directory in `store` must equal the one a clean build made, with its sidecar present.
fn assert_no_partial_paths(store: &Path, clean: &BTreeMap<String, (u32, Vec<u8>)>) {
    for (k, v) in store_outputs(store) {
        let top = k.split('/').next().expect("top");
        if top.starts_with('.') {
            continue;
        }
        let expected = clean
            .get(&k)
            .unwrap_or_else(|| panic!("{k} is not in a clean build"));
        if !k.ends_with(".drv") {
            assert_eq!(&v, expected, "{k} differs from a clean build");
            let sidecar = format!("{}.drv", top.trim_end_matches('/'));
            assert!(store.join(&sidecar).exists(), "{top} has no sidecar");
        }
    }
    // Every directory present is complete: it holds every file the clean build has under it.
    for k in clean.keys() {
        let top = k.split('/').next().expect("top");
        if k.contains('/') && store.join(top).is_dir() {
            assert!(store.join(k).exists(), "{top} is partial: {k} missing");
        }
    }
}

#[test]
fn killing_builds_at_random_moments_never_leaves_a_partial_path() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.seed_recipe();
    let clean_store = t.join("clean");
    let started = Instant::now();
    ok(hardway()
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)
        .arg("--store")
        .arg(&clean_store)
        .arg("--out")
        .arg(t.join("o1")));
    let cold = started.elapsed();
    let clean = store_outputs(&clean_store);
    let store = t.join("store");
    let mut rng = Lcg(0x5eed);
    let window = (cold.as_micros() as u64 * 3 / 2).max(2_000);
    for round in 0..24 {
        // Every fourth round starts from an empty store so early moments are hit too.
        if round % 4 == 0 {
            let _ = std::fs::remove_dir_all(&store);
        }
        let mut child = hardway()
            .arg("build")
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed)
            .arg("--store")
            .arg(&store)
            .arg("--out")
            .arg(t.join("o2"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(rng.next(window)));
        let _ = child.kill();
        let _ = child.wait();
        if store.exists() {
            assert_no_partial_paths(&store, &clean);
        }
    }
    ok(hardway()
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)
        .arg("--store")
        .arg(&store)
        .arg("--out")
        .arg(t.join("o2")));
    assert_eq!(store_outputs(&store), clean);
}

#[test]
fn two_concurrent_builds_into_one_store_agree() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.seed_recipe();
    let clean_store = t.join("clean");
    ok(hardway()
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)
        .arg("--store")
        .arg(&clean_store)
        .arg("--out")
        .arg(t.join("o0")));
    for round in 0..3 {
        let store = t.join(&format!("shared{round}"));
        let spawn = |out: &str| {
            hardway()
                .args(["build", "--json"])
                .arg(&recipe)
                .arg("--seed-file")
                .arg(&seed)
                .arg("--store")
                .arg(&store)
                .arg("--out")
                .arg(t.join(out))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        // Each round's links point into its own store: out/ directories are not shared across stores (a link
        // into another store is not this build's to replace).
        let (oa, ob) = (format!("oa{round}"), format!("ob{round}"));
        let a = spawn(&oa);
        let b = spawn(&ob);
        for child in [a, b] {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(store_outputs(&store), store_outputs(&clean_store));
        assert_eq!(
            std::fs::read_link(t.join(&format!("{oa}/encryption-config"))).expect("link a"),
            std::fs::read_link(t.join(&format!("{ob}/encryption-config"))).expect("link b")
        );
    }
}

#[test]
fn store_and_secret_files_are_private() {
    let t = TestDir::new();
    let seed = t.test_seed();
    ok(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(t.seed_recipe())
        .arg("--seed-file")
        .arg(&seed));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&t.join("store")), 0o700);
    let enc = std::fs::read_link(t.join("out/encryption-config")).expect("out link");
    assert_eq!(mode(&enc.join("encryption-config.yaml")), 0o600);
}

/// A builder defined here, outside the crate: registering it needs no change to the engine.
mod toy_builder {
    use std::collections::BTreeMap;

    use hardway::engine::builder::{self, BuildContext, Builder, BuilderError, Registry};
    use hardway::engine::graph::Graph;
    use hardway::engine::scheduler::{Silent, realise};
    use hardway::engine::seed::Seed;
    use hardway::engine::store::{FileMode, OutputWriter, Store, StoreError};

    /// Writes its text, or its input's text upper-cased.
    struct Shout;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Params {
        text: Option<String>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("nothing to shout")]
    struct Empty;

    impl Builder for Shout {
        const NAME: &'static str = "test.shout";
        const VERSION: u64 = 1;
        type Params = Params;

        fn build(
            &self,
            p: Params,
            ctx: &BuildContext,
            out: &mut OutputWriter,
        ) -> Result<(), BuilderError> {
            let text = match p.text {
                Some(t) => t,
                None => {
                    let bytes = ctx.read(&ctx.input("in")?.join("text"))?;
                    String::from_utf8_lossy(&bytes).to_uppercase()
                }
            };
            if text.is_empty() {
                return Err(BuilderError::artifact(Empty));
            }
            out.file("text", text.as_bytes(), FileMode::Public)
        }
    }

    fn graph(text: &str) -> Graph {
        let mut g = Graph::default();
        let a = g.add(
            builder::derivation::<Shout>(
                "a",
                &Params {
                    text: Some(text.into()),
                },
                BTreeMap::new(),
            )
            .expect("drv"),
        );
        g.add(
            builder::derivation::<Shout>(
                "b",
                &Params { text: None },
                BTreeMap::from([("in".to_string(), g.hash(a))]),
            )
            .expect("drv"),
        );
        g
    }

    #[test]
    fn a_toy_builder_registers_and_runs_without_touching_the_engine() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let seed = Seed::from_bytes([7; 32]);
        let mut registry = Registry::new();
        registry.register(Shout).expect("register");
        assert!(
            registry.register(Shout).is_err(),
            "a second registration of one name and version is refused"
        );
        let g = graph("hello");
        let summary = realise(&g, &store, &seed, &registry, 2, &Silent).expect("realise");
        assert_eq!((summary.built, summary.reused), (2, 0));
        let b = store.path(&g.nodes[1].store_name).join("text");
        assert_eq!(std::fs::read_to_string(b).expect("read"), "HELLO");

        // An unregistered builder and a failing builder are typed errors naming the derivation.
        let err = realise(&graph("x"), &store, &seed, &Registry::new(), 1, &Silent)
            .expect_err("no builder registered");
        let msg = err.to_string();
        assert!(
            msg.contains("building a") && msg.contains("\"test.shout\""),
            "{msg}"
        );
        let err = realise(&graph(""), &store, &seed, &registry, 1, &Silent).expect_err("empty");
        let hardway::engine::scheduler::BuildError::Store(StoreError::Build { name, .. }) = &err
        else {
            panic!("not a builder error: {err}");
        };
        assert_eq!(name, "a");
        assert!(err.to_string().ends_with("nothing to shout"), "{err}");
    }
}

/// No module imports from a layer above its own (docs/ARCHITECTURE.md): the engine, formats and keys know no
/// artifact, recipe, plan, operation or CLI; artifacts know no plan, operation or CLI.
#[test]
fn no_layer_imports_from_a_higher_one() {
    let rules: &[(&str, &[&str])] = &[
        (
            "src/engine",
            &[
                "crate::artifacts",
                "crate::recipe",
                "crate::plan",
                "crate::ops",
                "crate::cli",
            ],
        ),
        (
            "src/formats",
            &[
                "crate::engine",
                "crate::artifacts",
                "crate::recipe",
                "crate::plan",
                "crate::ops",
                "crate::cli",
            ],
        ),
        (
            "src/keys",
            &[
                "crate::engine",
                "crate::artifacts",
                "crate::recipe",
                "crate::plan",
                "crate::ops",
                "crate::cli",
            ],
        ),
        (
            "src/recipe",
            &[
                "crate::artifacts",
                "crate::plan",
                "crate::ops",
                "crate::cli",
            ],
        ),
        (
            "src/artifacts",
            &["crate::plan", "crate::ops", "crate::cli"],
        ),
        ("src/ops", &["crate::cli"]),
    ];
    let mut bad = Vec::new();
    for (dir, forbidden) in rules {
        for entry in walkdir::WalkDir::new(repo().join(dir)) {
            let entry = entry.expect("walk");
            if entry.path().extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).expect("read");
            for (n, line) in text.lines().enumerate() {
                for f in *forbidden {
                    if line.contains(f) && !line.trim_start().starts_with("//") {
                        bad.push(format!(
                            "{}:{}: {}",
                            entry.path().display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

/// A builder's error reaches the user as one line naming the derivation (regression: the cause was printed
/// twice), the build exits 1, and neither the failed path nor any out/ link is left.
#[test]
fn a_builder_error_is_one_line_naming_the_derivation() {
    use sha2::Digest as _;
    let t = TestDir::new();
    let seed = t.test_seed();
    // A release tarball without etcdctl.
    let mut raw = Vec::new();
    {
        let mut b = tar::Builder::new(&mut raw);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(3);
        b.append_data(&mut h, "etcd-v3.3.5-linux-amd64/etcd", &b"etc"[..])
            .expect("tar");
        b.finish().expect("tar");
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).expect("gz");
    let bytes = gz.finish().expect("gz");
    let tarball = t.join("etcd.tar.gz");
    std::fs::write(&tarball, &bytes).expect("write");
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text = seed_text()
        .lines()
        .map(|l| {
            if l.starts_with("urls = ") {
                format!("urls = [\"file://{}\"]", tarball.display())
            } else if l.starts_with("sha256 = ") {
                format!("sha256 = \"{sha}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let recipe = t.write("r.toml", &text);
    let out = run(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors,
        [
            "hardway: error: building etcd-3.3.5: etcd-v3.3.5-linux-amd64.tar.gz: no etcdctl in the \
          archive (expected <top directory>/etcdctl; did the release layout change?)"
        ],
        "{stderr}"
    );
    let store: Vec<String> = std::fs::read_dir(t.join("store"))
        .expect("store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !store.iter().any(|n| n.ends_with("-etcd-3.3.5")),
        "{store:?}"
    );
    assert!(
        !t.join("out").exists(),
        "out/ was linked after a failed build"
    );
}
