//! Shared test helpers: a fresh temporary directory per test, the hardway binary, the test seed, real tools.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A moment inside every certificate window of recipes/seed.toml (2026-06-01T00:00:00Z, Unix seconds), for
/// openssl's `-attime`: the seed's leaves expire on 2027-01-01, and tests must not depend on the day they run.
pub const VERIFY_AT: &str = "1780272000";

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

/// The Debian package that provides `tool`, for the message when it is missing. Every tool the tests look for
/// is listed (an unlisted one fails the test, so the message can always name the package).
pub fn debian_package(tool: &str) -> &'static str {
    match tool {
        "openssl" => "openssl",
        "kubectl" => "kubernetes-client",
        "cfssl" => "golang-cfssl",
        "nginx" => "nginx",
        "python3" => "python3",
        "sh" => "dash",
        "tar" => "tar",
        "gzip" => "gzip",
        "sha256sum" => "coreutils",
        "etcd" => "etcd-server",
        "etcdctl" => "etcd-client",
        "sshd" => "openssh-server",
        "ssh" | "ssh-keygen" => "openssh-client",
        "ip" => "iproute2",
        "setpriv" | "unshare" => "util-linux",
        "systemd-analyze" => "systemd",
        other => {
            panic!("tests/util/mod.rs: add {other:?} and its Debian package to debian_package")
        }
    }
}

fn env_is_1(name: &str) -> bool {
    std::env::var(name).as_deref() == Ok("1")
}

/// Something a test needs is missing: `what` names it, `remedy` says where it comes from (a Debian package).
///
/// - `HARDWAY_REQUIRE_TOOLS=1` (CI): the test fails.
/// - `HARDWAY_ALLOW_SKIP=1`: a `SKIP` line goes straight to the terminal (past the test harness's output
///   capture, so a plain `cargo test` shows it) and this returns: the caller skips the test, or the part of it
///   that needs `what`.
/// - Otherwise the test fails too, naming what is missing: a plain `cargo test` never reports a test that did
///   not run as passed.
pub fn unavailable(what: &str, remedy: &str) {
    if env_is_1("HARDWAY_REQUIRE_TOOLS") {
        panic!("{what} is missing ({remedy}), and HARDWAY_REQUIRE_TOOLS=1 requires it");
    }
    if env_is_1("HARDWAY_ALLOW_SKIP") {
        use std::io::Write as _;
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("a test");
        // Written to the process's stderr itself, not through eprintln!, which the harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test}: {what} is missing ({remedy}); skipped because HARDWAY_ALLOW_SKIP=1"
        );
        return;
    }
    panic!(
        "{what} is missing ({remedy}): install it (.ci/run lists every package the tests need), \
         or set HARDWAY_ALLOW_SKIP=1 to skip the tests that need it"
    );
}

/// True when `tool` is on PATH. When it is not, see `unavailable`: the test fails (naming the tool and its Debian
/// package) unless HARDWAY_ALLOW_SKIP=1, in which case this says SKIP and returns false.
pub fn have_tool(tool: &str) -> bool {
    let package = debian_package(tool);
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", tool])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        unavailable(tool, &format!("not on PATH; Debian package {package}"));
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

/// A finished build of a recipe in a fresh directory, with the test seed.
pub struct Built {
    pub t: TestDir,
    pub seed: PathBuf,
    pub recipe: PathBuf,
}

impl Built {
    /// Builds `recipe_text` (written as r.toml) into `store/`, links in `out/`.
    pub fn new(recipe_text: &str) -> Built {
        let t = TestDir::new();
        let seed = t.test_seed();
        let recipe = t.write("r.toml", recipe_text);
        ok(hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed));
        Built { t, seed, recipe }
    }

    /// Builds recipes/seed.toml.
    pub fn seed_recipe() -> Built {
        Built::new(&std::fs::read_to_string(repo().join("recipes/seed.toml")).expect("recipe"))
    }

    /// `out/<name>`, resolved.
    pub fn out(&self, name: &str) -> PathBuf {
        let link = self.t.join(&format!("out/{name}"));
        std::fs::canonicalize(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()))
    }

    /// A hardway command in this build's directory with its seed.
    pub fn hardway(&self, sub: &str) -> Command {
        let mut c = hardway();
        c.current_dir(self.t.path())
            .arg(sub)
            .arg(&self.recipe)
            .arg("--seed-file")
            .arg(&self.seed);
        c
    }
}

/// The seed recipe with every address moved to 127.0.0.x (masters .21/.22, workers .23/.24, lb .26) so real
/// servers can listen on them.
/// Certificates last 100 years from the seed's issue date, so clients that read the clock (kubectl) accept them
/// whatever day the tests run.
pub fn loopback_recipe(base: u8) -> String {
    let text = std::fs::read_to_string(repo().join("recipes/seed.toml")).expect("recipe");
    let mut t = text
        .replace("ca_validity_hours = 43800", "ca_validity_hours = 876000")
        .replace("validity_hours = 8760 ", "validity_hours = 876000 ");
    assert!(
        t.contains("validity_hours = 876000 "),
        "recipes/seed.toml changed: update loopback_recipe"
    );
    for (from, last) in [("221", 1u8), ("222", 2), ("223", 3), ("224", 4), ("226", 6)] {
        t = t.replace(
            &format!("10.128.15.{from}"),
            &format!("127.0.0.{}", base + last),
        );
    }
    t
}

/// 1-based line of the first occurrence of `needle` in `text`.
pub fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in recipe"));
    text[..at].matches('\n').count() + 1
}

/// Builds `text`; asserts failure, that the error names `r.toml:<line of needle>:` and `field`, and that no
/// store, out/ or seed was written.
pub fn assert_rejected(text: &str, needle: &str, field: &str, words: &str) {
    assert_rejected_at(text, line_of(text, needle), field, words);
}

pub fn assert_rejected_at(text: &str, line: usize, field: &str, words: &str) {
    let t = TestDir::new();
    let recipe = t.write("r.toml", text);
    let err = fails(hardway().current_dir(t.path()).arg("build").arg(&recipe));
    let place = format!("r.toml:{line}:");
    assert!(err.contains(&place), "error must name {place}: {err}");
    assert!(err.contains(field), "error must name field {field}: {err}");
    assert!(
        err.to_lowercase().contains(&words.to_lowercase()),
        "error must say {words:?}: {err}"
    );
    for written in ["store", "out", "secrets"] {
        assert!(
            !t.join(written).exists(),
            "a failing recipe wrote {written}/"
        );
    }
}
