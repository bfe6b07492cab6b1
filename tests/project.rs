//! The project root: state (seed, store, out/) is found from the recipe's `.hardway/` ancestor, never the cwd.

use std::path::Path;

use crate::util::*;

/// A project made by `hardway init` in `t`, with this project's copy of the seed recipe under recipes/.
fn project(t: &TestDir) -> std::path::PathBuf {
    std::fs::remove_dir(t.join(".hardway")).expect("start bare");
    let out = ok(hardway().current_dir(t.path()).arg("init"));
    assert!(
        out.contains(".hardway/") && out.contains("created seed"),
        "{out}"
    );
    assert!(t.join(".hardway/README").is_file());
    t.seed_recipe()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn state_is_found_from_the_recipe_whatever_the_cwd() {
    let t = TestDir::new();
    let recipe = project(&t);
    // From inside recipes/, by a relative path: the root's seed, store and out/ are used.
    let out = run(hardway()
        .current_dir(t.join("recipes"))
        .args(["build", "--json", "seed.toml"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&t.join("recipes")), ["seed.lock", "seed.toml"]);
    assert!(t.join("out/node1.tar.gz").exists() && t.join("store").is_dir());
    // From the root, and from an unrelated directory: nothing is rebuilt, the root is printed.
    let other = TestDir::bare();
    for cwd in [t.path(), other.path()] {
        let out = run(hardway().current_dir(cwd).arg("build").arg(&recipe));
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let root = std::fs::canonicalize(t.path()).expect("root");
        assert!(
            stderr.contains(&format!("project root {}", root.display())),
            "{stderr}"
        );
        assert!(
            !stderr.contains("built "),
            "rebuilt from {}: {stderr}",
            cwd.display()
        );
    }
    assert!(names(other.path()).is_empty(), "the cwd got state");
    // show and check find the same state.
    let shown = ok(hardway().current_dir(other.path()).arg("show").arg(&recipe));
    assert!(!shown.contains("missing"), "{shown}");
}

#[test]
fn without_a_project_root_nothing_is_written_and_the_error_says_what_to_do() {
    let t = TestDir::bare();
    let recipe = t.seed_recipe();
    let seed = t.test_seed();
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(
        err.contains("no hardway project")
            && err.contains(".hardway/")
            && err.contains("hardway init")
            && err.contains("--store"),
        "{err}"
    );
    assert_eq!(
        names(t.path()),
        ["recipes", "seed"],
        "something was written"
    );
    // Every location given explicitly (flags or environment): no root is needed.
    ok(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)
        .arg("--store")
        .arg(t.join("st"))
        .env("HARDWAY_OUT", t.join("o")));
    assert!(t.join("o/node1.tar.gz").exists());
}

#[test]
fn init_keeps_an_existing_marker_and_never_replaces_a_seed() {
    let t = TestDir::new();
    project(&t);
    let before = std::fs::read(t.join("secrets/seed")).expect("seed");
    let err = fails(hardway().current_dir(t.path()).arg("init"));
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(t.join("secrets/seed")).expect("seed"), before);
    // --no-seed: the marker only (the far side of an air gap imports and pushes, it never builds).
    let far = TestDir::bare();
    let out = ok(hardway()
        .current_dir(far.path())
        .args(["init", "--no-seed"]));
    assert!(out.contains(".hardway/"), "{out}");
    assert!(far.join(".hardway").is_dir() && !far.join("secrets").exists());
    // init DIR makes another directory a project from anywhere.
    let other = TestDir::bare();
    ok(hardway()
        .current_dir(t.path())
        .arg("init")
        .arg(other.path()));
    assert!(other.join(".hardway").is_dir() && other.join("secrets/seed").is_file());
}
