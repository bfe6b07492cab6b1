//! encryption-config.yaml: structure checked by a real YAML parser (PyYAML), providers, staged key rotation.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// Builds `recipe_text`; returns the build (it owns the directory) and its encryption config's path.
fn build_config(recipe_text: &str) -> (Built, PathBuf) {
    let b = Built::new(recipe_text);
    let path = b.out("encryption-config").join("encryption-config.yaml");
    (b, path)
}

/// PyYAML's reading of the file, re-emitted as JSON with the details the tests check.
fn pyyaml(path: &Path) -> Option<String> {
    if !have_tool("python3") {
        return None;
    }
    let script = r#"
import sys, json, base64
try:
    import yaml
except ImportError:
    print("NO-PYYAML"); sys.exit(0)
d = yaml.safe_load(open(sys.argv[1]))
assert d["kind"] == "EncryptionConfiguration", d
assert d["apiVersion"] == "apiserver.config.k8s.io/v1", d
(res,) = d["resources"]
assert res["resources"] == ["secrets"], res
out = []
for p in res["providers"]:
    (name, body), = p.items()
    if name == "identity":
        assert body == {}, body
        out.append(["identity"])
    else:
        keys = [[k["name"], len(base64.b64decode(k["secret"], validate=True)), k["secret"]] for k in body["keys"]]
        out.append([name, keys])
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "PyYAML rejected the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if s == "NO-PYYAML" {
        unavailable(
            "PyYAML (Python's yaml module)",
            "Debian package python3-yaml, or pip install pyyaml as .ci/run does",
        );
        return None;
    }
    Some(s)
}

fn recipe() -> String {
    seed_text()
}

#[test]
fn seed_config_parses_as_the_tutorial_describes() {
    let (_b, path) = build_config(&recipe());
    let Some(json) = pyyaml(&path) else { return };
    // aescbc with key1 (32 bytes), then identity.
    assert!(json.starts_with("[[\"aescbc\", [[\"key1\", 32, "), "{json}");
    assert!(json.ends_with(", [\"identity\"]]"), "{json}");
}

#[test]
fn every_provider_gives_valid_yaml() {
    let with = |provider: &str| {
        recipe().replace(
            "provider = \"aescbc\"",
            &format!("provider = \"{provider}\""),
        )
    };
    for provider in ["aesgcm", "secretbox"] {
        let (_b, path) = build_config(&with(provider));
        let Some(json) = pyyaml(&path) else { return };
        assert!(
            json.starts_with(&format!("[[\"{provider}\", [[\"key1\", 32, ")),
            "{json}"
        );
    }
    let (_b, path) = build_config(&with("identity"));
    let Some(json) = pyyaml(&path) else { return };
    assert_eq!(json, "[[\"identity\"]]");
}

#[test]
fn staged_rotation_keeps_the_old_key() {
    let keys = |list: &str| recipe().replace("keys = [{ name = \"key1\", generation = 1 }]", list);
    let (_b1, p1) = build_config(&recipe());
    // Stage 1 of the rotation: the new key is added second (read only), then made first (writes).
    let (_b2, p2) = build_config(&keys(
        "keys = [{ name = \"key1\", generation = 1 }, { name = \"key2\", generation = 2 }]",
    ));
    let (_b3, p3) = build_config(&keys(
        "keys = [{ name = \"key2\", generation = 2 }, { name = \"key1\", generation = 1 }]",
    ));
    let (Some(one), Some(two), Some(three)) = (pyyaml(&p1), pyyaml(&p2), pyyaml(&p3)) else {
        return;
    };
    let secret = |json: &str, name: &str| -> String {
        let at = json
            .find(&format!("[\"{name}\", 32, \""))
            .unwrap_or_else(|| panic!("{name} in {json}"));
        json[at..].split('"').nth(3).expect("secret").to_string()
    };
    assert_eq!(
        secret(&one, "key1"),
        secret(&two, "key1"),
        "adding key2 must not change key1"
    );
    assert_eq!(secret(&two, "key2"), secret(&three, "key2"));
    assert_ne!(secret(&two, "key1"), secret(&two, "key2"));
    assert!(
        three.find("key2") < three.find("key1"),
        "key2 writes first after the swap: {three}"
    );
}

#[test]
fn another_seed_gives_another_key() {
    let (_b, path) = build_config(&recipe());
    let a = std::fs::read(path).expect("a");
    let t2 = TestDir::new();
    let seed = t2.join("other-seed");
    ok(hardway().args(["init", "--seed-file"]).arg(&seed));
    let recipe_path = t2.write("r.toml", &recipe());
    ok(hardway()
        .current_dir(t2.path())
        .arg("build")
        .arg(&recipe_path)
        .arg("--seed-file")
        .arg(&seed));
    let b = std::fs::read(
        std::fs::read_link(t2.join("out/encryption-config"))
            .expect("link")
            .join("encryption-config.yaml"),
    )
    .expect("b");
    assert_ne!(a, b);
}
