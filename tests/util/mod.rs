//! Shared test helpers: a fresh temporary directory per test, the hardway binary, the test seed, real tools.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test's own directory, removed at the end.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("hardway-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Copies the committed test seed (fixtures/test-seed) here with mode 0600; returns its path.
    pub fn test_seed(&self) -> PathBuf {
        let p = self.join("seed");
        std::fs::copy(repo().join("fixtures/test-seed"), &p).expect("copy test seed");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod seed");
        p
    }

    /// Writes a file (e.g. a recipe) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// A `hardway` command with no inherited HARDWAY_* settings.
pub fn hardway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hardway"));
    c.env_remove("HARDWAY_SEED_FILE")
        .env_remove("HARDWAY_STORE");
    c
}

/// Runs and returns the output, whatever the exit status.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

/// Runs and asserts success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "command failed: {cmd:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs, asserts failure, returns stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded: {cmd:?}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `build --json` summary: (built, reused).
pub fn build_counts(stdout: &str) -> (u64, u64) {
    let field = |name: &str| -> u64 {
        let key = format!("\"{name}\":");
        let rest = &stdout[stdout
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            + key.len()..];
        rest.chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .expect("count")
    };
    (field("built"), field("reused"))
}

/// True when `tool` is on PATH. Missing: fails the test when HARDWAY_REQUIRE_TOOLS=1, else skips loudly.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("HARDWAY_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "required tool {tool:?} is not installed (HARDWAY_REQUIRE_TOOLS=1); see .ci/run for the packages"
            );
        }
        eprintln!(
            "SKIPPED: {tool} is not installed; set HARDWAY_REQUIRE_TOOLS=1 to make this a failure"
        );
    }
    found
}

/// Every regular file under `dir` (following the store's layout) as relative path → (mode, bytes).
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, (u32, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&p).expect("meta");
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.insert(format!("{rel}/"), (mode, Vec::new()));
            walk(root, &p, out);
        } else {
            out.insert(rel, (mode, std::fs::read(&p).expect("read")));
        }
    }
}
