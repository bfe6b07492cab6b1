//! Golden hashes: recipes/seed.toml built with the committed test seed must give exactly the store paths and
//! output bytes recorded in fixtures/golden/seed.txt. Its `[etcd]` source is the tests' deterministic stand-in
//! tarball (`util::test_etcd_tarball`, made from fixed bytes by the pinned tar and flate2 crates), since the real
//! release cannot be downloaded in tests; everything else is the recipe as committed.
//!
//! They pin the derivation encoding, every builder and every crate whose bytes reach an output, and the bytes
//! of `hardway export` of that build (which include the lock, so the hardway version too). After an
//! intended change, regenerate with:
//!     HARDWAY_UPDATE_GOLDEN=1 cargo test --test tests golden
//! and review the diff: every changed line is an output that users will see change.

use std::fmt::Write;

use crate::util::*;

#[test]
fn golden_store_paths_and_output_hashes_for_the_seed_recipe() {
    let t = TestDir::new();
    let seed = t.test_seed();
    ok(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(t.seed_recipe())
        .arg("--seed-file")
        .arg(&seed)
        .args(["-j", "2"]));
    let mut actual = String::from(
        "# recipes/seed.toml (etcd: the tests' stand-in tarball) built with fixtures/test-seed:\n\
         # <store path>/<file> <mode> <BLAKE3 of the bytes>\n\
         # Regenerate: HARDWAY_UPDATE_GOLDEN=1 cargo test --test tests golden\n",
    );
    for (path, (mode, bytes)) in snapshot(&t.join("store")) {
        let top = path.split('/').next().expect("top");
        if top.starts_with('.') || path.ends_with('/') || path.ends_with(".drv") {
            continue;
        }
        writeln!(
            actual,
            "{path} {mode:04o} {}",
            blake3::hash(&bytes).to_hex()
        )
        .expect("write");
    }
    // The export archive of the whole build (its bytes: the tar and ed25519 crates, the lock, the sidecars) and
    // the seed's export signing key. The archive carries the recipe, whose stand-in mirror is a path of this
    // checkout: it is set to a fixed one first (sources are keyed by their pin, so nothing else changes).
    let recipe = t.join("recipes/seed.toml");
    let fixed: String = std::fs::read_to_string(&recipe)
        .expect("recipe")
        .lines()
        .map(|l| {
            if l.starts_with("urls = ") {
                "urls = [\"file:///stand-in/etcd-v3.3.5-linux-amd64.tar.gz\"]\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&recipe, fixed).expect("write recipe");
    let archive = t.join("seed.hwx");
    ok(hardway()
        .current_dir(t.path())
        .arg("export")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)
        .arg("-o")
        .arg(&archive));
    writeln!(
        actual,
        "export seed.hwx {}\nexport public key {}",
        blake3::hash(&std::fs::read(&archive).expect("archive")).to_hex(),
        std::fs::read_to_string(t.join("seed.hwx.pub"))
            .expect("pub")
            .trim()
    )
    .expect("write");
    let golden = repo().join("fixtures/golden/seed.txt");
    if std::env::var("HARDWAY_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(golden.parent().expect("dir")).expect("mkdir");
        std::fs::write(&golden, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("fixtures/golden/seed.txt (regenerate as documented)");
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .filter(|l| !actual.lines().any(|a| a == *l))
            .map(|l| format!("- {l}"))
            .chain(
                actual
                    .lines()
                    .filter(|l| !expected.lines().any(|e| e == *l))
                    .map(|l| format!("+ {l}")),
            )
            .collect();
        panic!(
            "outputs differ from fixtures/golden/seed.txt:\n{}",
            diff.join("\n")
        );
    }
}
