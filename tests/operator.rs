//! What an operator meets at the edges: an `out/` that holds exactly the current build's links and never
//! clobbers a user's file, a `--store` that never takes over a foreign directory, quiet and table output.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

fn build(
    t: &TestDir,
    seed: &std::path::Path,
    recipe: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    run(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(recipe)
        .arg("--seed-file")
        .arg(seed)
        .args(extra))
}

fn without_node2(text: &str) -> String {
    text.replace(
        "[[hosts]]\nname = \"node2\"\nip = \"10.128.15.224\"\nrole = \"worker\"\n",
        "",
    )
}

#[test]
fn out_loses_the_links_of_a_removed_host() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &seed_text());
    assert!(build(&t, &seed, &recipe, &[]).status.success());
    assert!(t.join("out/node2.tar.gz").exists());
    let text = without_node2(&seed_text());
    assert!(!text.contains("node2"), "the recipe still names node2");
    std::fs::write(&recipe, text).expect("recipe");
    let out = build(&t, &seed, &recipe, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stale in [
        "node2.tar.gz",
        "node2.manifest",
        "node2.kubeconfig",
        "node2",
    ] {
        assert!(
            std::fs::symlink_metadata(t.join(&format!("out/{stale}"))).is_err(),
            "out/{stale} is still there"
        );
    }
    assert!(t.join("out/node1.tar.gz").exists());
}

#[test]
fn a_users_file_in_out_is_never_replaced() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &seed_text());
    t.write("out/node1.tar.gz", "my own notes\n");
    t.write("out/notes.txt", "keep me\n");
    let out = build(&t, &seed, &recipe, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node1.tar.gz") && err.contains("not a hardway link"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(t.join("out/node1.tar.gz")).expect("kept"),
        "my own notes\n"
    );
    // Nothing in out/ was changed: no link was made before the refusal.
    let names: Vec<String> = std::fs::read_dir(t.join("out"))
        .expect("out")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A link elsewhere (not into this store) is not hardway's either.
    std::fs::remove_file(t.join("out/node1.tar.gz")).expect("rm");
    std::os::unix::fs::symlink("/etc/hostname", t.join("out/node1.tar.gz")).expect("link");
    let out = build(&t, &seed, &recipe, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the store"));
    // Once it is moved away, the build links everything and keeps the user's other file.
    std::fs::remove_file(t.join("out/node1.tar.gz")).expect("rm");
    assert!(build(&t, &seed, &recipe, &[]).status.success());
    assert_eq!(
        std::fs::read_to_string(t.join("out/notes.txt")).expect("kept"),
        "keep me\n"
    );
}

#[test]
fn a_foreign_directory_never_becomes_a_store() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &seed_text());
    t.write("mine/file.txt", "not a store\n");
    std::fs::set_permissions(t.join("mine"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let out = build(&t, &seed, &recipe, &["--store", "mine"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty and not a hardway store"), "{err}");
    let mode = std::fs::metadata(t.join("mine"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o755, "the directory was chmod-ed");
    assert_eq!(
        std::fs::read_dir(t.join("mine")).expect("dir").count(),
        1,
        "it was filled"
    );
    // An empty directory is fine.
    std::fs::create_dir(t.join("empty")).expect("mkdir");
    assert!(
        build(&t, &seed, &recipe, &["--store", "empty"])
            .status
            .success()
    );
}

#[test]
fn quiet_prints_nothing_and_the_default_shows_hosts_and_next_steps() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &seed_text());
    let out = run(hardway()
        .current_dir(t.path())
        .env("HARDWAY_OUT", t.join("links"))
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed)
        .arg("-q"));
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert!(
        t.join("links/node1.tar.gz").exists(),
        "HARDWAY_OUT was not used"
    );
    let out = build(&t, &seed, &recipe, &["--out", "links"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["master1", "master", "10.128.15.221", "links/master1.tar.gz"]
                    .iter()
                    .copied()
                    .chain(l.split_whitespace().skip(4))
                    .collect::<Vec<_>>()),
        "{stdout}"
    );
    assert!(
        stdout.contains("hardway check") && stdout.contains("hardway push"),
        "{stdout}"
    );
}

/// Regression: a fresh clone's `store/` holds the repository's `.gitignore`, and must still become the store.
#[test]
fn a_store_directory_with_only_a_gitignore_becomes_the_store() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &seed_text());
    t.write("store/.gitignore", "*\n!.gitignore\n");
    let out = build(&t, &seed, &recipe, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.join("store/.hardway-store").is_file());
}

/// `build` reads the clock once, to warn (not fail) about certificates that are expired or not yet valid.
#[test]
fn build_warns_about_expired_and_not_yet_valid_certificates() {
    let t = TestDir::new();
    let seed = t.test_seed();
    for (date, words) in [
        ("2000-01-01T00:00:00Z", "expired on 2000-12-31"), // 2000 is a leap year: 8760 h end a day early
        ("9000-01-01T00:00:00Z", "not valid before 9000-01-01"),
    ] {
        let text = seed_text().replace(
            "issue_date = 2026-12-01T00:00:00Z",
            &format!("issue_date = {date}"),
        );
        assert!(text.contains(date));
        let recipe = t.write("r.toml", &text);
        let out = build(
            &t,
            &seed,
            &recipe,
            &[
                "--store",
                &format!("store-{}", &date[..4]),
                "--out",
                &format!("out-{}", &date[..4]),
            ],
        );
        assert!(
            out.status.success(),
            "a warning must not fail the build: {out:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("hardway: warning: the leaf certificates") && err.contains(words),
            "{err}"
        );
        assert!(
            err.contains("issue_date"),
            "the warning says what to do: {err}"
        );
    }
}

/// With --json, a failure is a JSON object on stdout (kind, message, file, line) and the same exit status.
#[test]
fn json_failures_are_json_objects() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let text = seed_text().replace("10.128.15.224", "0.0.0.0");
    let recipe = t.write("r.toml", &text);
    let out = build(&t, &seed, &recipe, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error object");
    assert_eq!(v["error"]["kind"], "recipe");
    assert_eq!(
        v["error"]["line"],
        line_of(&text, "ip = \"0.0.0.0\"") as u64
    );
    assert!(
        v["error"]["file"]
            .as_str()
            .expect("file")
            .ends_with("r.toml"),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("m")
            .contains("unspecified"),
        "{v}"
    );
    // verify without the source: exit 3, and the object says so.
    let good = t.write("good.toml", &seed_text());
    let out = run(hardway()
        .current_dir(t.path())
        .args(["verify", "--json"])
        .arg(&good)
        .arg("--seed-file")
        .arg(&seed)
        .args(["--store", "nothing-here"]));
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["error"]["kind"], "cannot-verify");
    assert_eq!(v["error"]["exit"], 3);
}

#[test]
fn show_json_lists_each_derivation_and_whether_it_is_built() {
    let b = Built::seed_recipe();
    let out = run(b.hardway("show").arg("--json"));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let nodes = v["derivations"].as_array().expect("derivations");
    assert!(nodes.len() > 30, "{v}");
    let ca = nodes.iter().find(|n| n["name"] == "ca").expect("ca");
    assert_eq!(ca["builder"], "pki.cert");
    assert_eq!(ca["built"], true);
    assert!(ca["store_path"].as_str().expect("path").ends_with("-ca"));
}
