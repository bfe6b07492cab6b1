//! Shared test helpers: a fresh temporary directory per test, the hardway binary, the test seed, real tools.

#![allow(dead_code)]

pub mod datacenter;
pub mod etcd;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A moment inside every certificate window of recipes/seed.toml (2027-06-01T00:00:00Z, Unix seconds), for
/// openssl's `-attime`: the seed's leaves expire on 2027-12-01, and tests must not depend on the day they run.
pub const VERIFY_AT: &str = "1811808000";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test's own directory, removed at the end.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    /// A fresh directory that is a hardway project root (holds `.hardway/`, as `hardway init` makes).
    pub fn new() -> TestDir {
        let t = TestDir::bare();
        std::fs::create_dir(t.join(".hardway")).expect("mkdir .hardway");
        t
    }

    /// A fresh directory that is not a project root.
    pub fn bare() -> TestDir {
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

    /// [`seed_text`] written as `recipes/seed.toml` here (this project's copy of recipes/seed.toml).
    pub fn seed_recipe(&self) -> PathBuf {
        self.write("recipes/seed.toml", &seed_text())
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
        .env_remove("HARDWAY_STORE")
        .env_remove("HARDWAY_OUT");
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
        Built::new(&seed_text())
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
    let text = seed_text();
    let mut t = text
        .replace(
            "issue_date = ",
            "loopback_lab = true               # every host on 127.0.0.x\nissue_date = ",
        )
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

/// A base for `loopback_recipe` whose addresses (127.0.0.base+1 … base+6, ports 443 and 6443) are free now and
/// not handed to another test of this process: `preferred` if it is, else the first free one of 60, 70, … 240.
/// Test runs in other checkouts on the same machine use the same addresses; a server of theirs (or one left over
/// from an old run) must not fail this test, nor answer in place of this test's server.
pub fn free_loopback_base(preferred: u8) -> u8 {
    static CLAIMED: std::sync::Mutex<std::collections::BTreeSet<u8>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    let free = |base: u8| {
        (1..=6).all(|last| {
            [443, 6443].iter().all(|port| {
                // Only "in use" means taken: a non-root test may not bind 443 at all, yet 6443 is what it needs.
                !std::net::TcpListener::bind(format!("127.0.0.{}:{port}", base + last))
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
            })
        })
    };
    let candidates = std::iter::once(preferred).chain((60..=240).step_by(10));
    for base in candidates {
        if !claimed.contains(&base) && free(base) {
            if base != preferred {
                eprintln!(
                    "127.0.0.{}…{} are taken: using 127.0.0.{}…{}",
                    preferred + 1,
                    preferred + 6,
                    base + 1,
                    base + 6
                );
            }
            claimed.insert(base);
            return base;
        }
    }
    panic!("no free block of six loopback addresses in 127.0.0.41–127.0.0.246 (see `ss -ltnp`)");
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

// ---- kubectl ---------------------------------------------------------------------------------------------

/// The kubectl the tests run: `HARDWAY_KUBECTL` (a path, e.g. an older kubectl unpacked beside the installed
/// one), else `kubectl` from PATH.
pub fn kubectl_program() -> String {
    std::env::var("HARDWAY_KUBECTL")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "kubectl".to_string())
}

/// A command running the kubectl under test.
pub fn kubectl() -> Command {
    Command::new(kubectl_program())
}

/// True when the kubectl under test is there (see `have_tool`). A `HARDWAY_KUBECTL` that does not run is a
/// failure, never a skip: it was asked for.
pub fn have_kubectl() -> bool {
    match std::env::var("HARDWAY_KUBECTL") {
        Ok(p) if !p.is_empty() => {
            let runs = Command::new(&p)
                .args(["version", "--client"])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(runs, "HARDWAY_KUBECTL={p} does not run `version --client`");
            true
        }
        _ => have_tool("kubectl"),
    }
}

/// A kubectl client version, from its gitVersion (`v1.32.4`, `v1.20.2`, `v1.32.4-dispatcher`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubectlVersion {
    pub git_version: String,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KubectlVersion {
    /// Parses a gitVersion: `v`, major, minor, patch, then anything (a pre-release or vendor suffix).
    pub fn parse(git_version: &str) -> Option<KubectlVersion> {
        let rest = git_version.strip_prefix('v')?;
        let mut parts = rest.splitn(3, '.');
        let number = |s: &str| -> Option<u32> {
            let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        };
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = number(parts.next()?)?;
        Some(KubectlVersion {
            git_version: git_version.to_string(),
            major,
            minor,
            patch,
        })
    }

    /// The gitVersion in `kubectl version --client -o json` (`"clientVersion": {… "gitVersion": "v1.32.4" …}`).
    pub fn from_json(text: &str) -> Option<KubectlVersion> {
        let client = &text[text.find("\"clientVersion\"")?..];
        let after = &client[client.find("\"gitVersion\"")? + "\"gitVersion\"".len()..];
        let value = after
            .trim_start()
            .strip_prefix(':')?
            .trim_start()
            .strip_prefix('"')?;
        KubectlVersion::parse(&value[..value.find('"')?])
    }

    /// The gitVersion in `kubectl version --client` text: old kubectl prints
    /// `Client Version: version.Info{Major:"1", Minor:"20", GitVersion:"v1.20.2", …}`, new kubectl
    /// `Client Version: v1.32.4`.
    pub fn from_text(text: &str) -> Option<KubectlVersion> {
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Client Version:"))?
            .trim();
        if let Some(at) = line.find("GitVersion:\"") {
            let value = &line[at + "GitVersion:\"".len()..];
            return KubectlVersion::parse(&value[..value.find('"')?]);
        }
        KubectlVersion::parse(line.split_whitespace().next()?)
    }
}

/// The version of the kubectl under test, asked once per test binary (`version --client -o json`, falling back to
/// the text of `version --client` for a kubectl without `-o`), and reported once on the terminal past the
/// harness's output capture, so every run says which kubectl it checked.
pub fn kubectl_version() -> &'static KubectlVersion {
    static VERSION: std::sync::OnceLock<KubectlVersion> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let program = kubectl_program();
        let json = run(kubectl().args(["version", "--client", "-o", "json"]));
        let parsed = if json.status.success() {
            KubectlVersion::from_json(&String::from_utf8_lossy(&json.stdout))
        } else {
            None
        };
        let version = parsed.unwrap_or_else(|| {
            let text = ok(kubectl().args(["version", "--client"]));
            KubectlVersion::from_text(&text)
                .unwrap_or_else(|| panic!("{program}: no client gitVersion in:\n{text}"))
        });
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "kubectl under test: {program} {}",
            version.git_version
        );
        version
    })
}

// ---- servers ---------------------------------------------------------------------------------------------

/// Sends `signal` (a name: TERM, QUIT, KILL) to every process of process group `pgid` — by group ID, never by
/// name. Uses the shell's `kill` builtin (`kill -s SIG -- -PGID`), so no procps is needed. False if none got it.
pub fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" -- \"-$2\" 2>/dev/null",
            "sh",
            signal,
            &pgid.to_string(),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// `/proc/<pid>/stat`: (state, process group), or None when the process is gone.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses, so read after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// True while process `pid` exists and is not a zombie.
pub fn is_live(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(s, _)| s != 'Z' && s != 'X')
}

/// PIDs of the live (not zombie) processes of group `pgid`.
pub fn group_processes(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((state, pgrp)) = proc_stat(pid)
            && pgrp == pgid
            && state != 'Z'
            && state != 'X'
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// The inodes of the TCP sockets listening on exactly `addr` (from /proc/net/tcp or tcp6).
fn listening_socket_inodes(addr: std::net::SocketAddr) -> Vec<u64> {
    // The kernel prints each 32-bit word of the address as a host-order integer, the port as a number.
    let words = |octets: &[u8]| -> String {
        octets
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect()
    };
    let (table, ip) = match addr.ip() {
        std::net::IpAddr::V4(ip) => ("/proc/net/tcp", words(&ip.octets())),
        std::net::IpAddr::V6(ip) => ("/proc/net/tcp6", words(&ip.octets())),
    };
    let local = format!("{ip}:{:04X}", addr.port());
    let text = std::fs::read_to_string(table).unwrap_or_else(|e| panic!("{table}: {e}"));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl, local_address, rem_address, st (0A: LISTEN), tx:rx, tr:when, retrnsmt, uid, timeout, inode
            if f.len() > 9 && f[1] == local && f[3] == "0A" {
                f[9].parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// True when one of `pids` holds a socket listening on `addr`.
fn held_listener(pids: &[u32], addr: std::net::SocketAddr) -> bool {
    let inodes = listening_socket_inodes(addr);
    if inodes.is_empty() {
        return false;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    pids.iter().any(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| wanted.iter().any(|w| l.as_os_str() == w.as_str()))
            })
    })
}

/// Asserts nothing listens on `addr` (it can be bound): a server left over from an earlier run, or another
/// test's, would otherwise answer in place of the one this test starts.
pub fn assert_port_free(addr: &str) {
    if let Err(e) = std::net::TcpListener::bind(addr) {
        panic!(
            "{addr} is taken ({e}): something already listens there, perhaps a server left over from an \
             earlier run (see `ss -ltnp`); a test must talk to its own server"
        );
    }
}

/// A server a test started, with everything it starts (nginx's workers): the leader of a process group of its
/// own. Dropping it — also when the test panics — stops the whole group: the stop signal (SIGTERM unless
/// `stop_signal` says otherwise) to the group, up to 10 s (`stop_timeout`) for every process of the group to
/// exit, then SIGKILL to the group; then the leader is reaped. The leader is reaped only then, so until the group is gone its PID
/// (the group ID) cannot be reused and signals reach no other process.
///
/// The program must stay in its group: no daemonizing (nginx runs with `daemon off;`).
pub struct Daemon {
    name: String,
    child: std::process::Child,
    stop_signal: &'static str,
    stop_timeout: std::time::Duration,
    stopped: bool,
}

impl Daemon {
    /// Spawns `cmd` (stdin from /dev/null) as the leader of a new process group.
    pub fn spawn(name: &str, cmd: &mut Command) -> Daemon {
        use std::os::unix::process::CommandExt as _;
        let child = cmd
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        Daemon {
            name: name.to_string(),
            child,
            stop_signal: "TERM",
            stop_timeout: std::time::Duration::from_secs(10),
            stopped: false,
        }
    }

    /// Spawns a server that is to listen on `addr` (e.g. `127.0.0.46:6443`): asserts the address is free before,
    /// then waits until a process of this group listens on it (see `wait_listening`).
    pub fn listening(name: &str, addr: &str, cmd: &mut Command) -> Daemon {
        assert_port_free(addr);
        let d = Daemon::spawn(name, cmd);
        d.wait_listening(addr);
        d
    }

    /// The signal that stops this server gracefully (a name: TERM, QUIT, INT).
    pub fn stop_signal(mut self, signal: &'static str) -> Daemon {
        self.stop_signal = signal;
        self
    }

    /// How long `stop` waits after the stop signal before SIGKILL (10 s unless set).
    pub fn stop_timeout(mut self, timeout: std::time::Duration) -> Daemon {
        self.stop_timeout = timeout;
        self
    }

    /// The leader's PID, which is the group ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the leader runs (it has not exited; it is not reaped before `stop`).
    pub fn is_running(&self) -> bool {
        !self.stopped && is_live(self.pid())
    }

    /// Fails the test unless the leader still runs.
    pub fn assert_running(&self) {
        assert!(
            self.is_running(),
            "{} (PID {}) is no longer running",
            self.name,
            self.pid()
        );
    }

    /// The live processes of this server's group.
    pub fn processes(&self) -> Vec<u32> {
        group_processes(self.pid())
    }

    /// Waits (up to 20 s) until the group has at least `n` live processes (nginx forks its workers after it
    /// listens); returns them.
    pub fn wait_processes(&self, n: usize) -> Vec<u32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let pids = self.processes();
            if pids.len() >= n {
                return pids;
            }
            assert!(
                self.is_running() && std::time::Instant::now() < deadline,
                "{} (PID {}): {} processes, not {n}, in its group: {pids:?}",
                self.name,
                self.pid(),
                pids.len()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits (up to 20 s) until a process of this group — not a leftover that happens to answer on the address
    /// — holds a socket listening on `addr`; fails if the leader exits first (e.g. it could not bind).
    pub fn wait_listening(&self, addr: &str) {
        let sa: std::net::SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{addr}: not an address: {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if held_listener(&self.processes(), sa) {
                return;
            }
            assert!(
                self.is_running(),
                "{} (PID {}) exited before listening on {addr}",
                self.name,
                self.pid()
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{} (PID {}) did not listen on {addr} within 20 s",
                self.name,
                self.pid()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the group to have no live process.
    fn wait_group_gone(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.processes().is_empty() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops the group (see the type's documentation) and reaps the leader. Returns the PIDs of the group that
    /// survived even SIGKILL (none, unless a process is stuck in the kernel). Idempotent.
    pub fn stop(&mut self) -> Vec<u32> {
        if self.stopped {
            return Vec::new();
        }
        let pgid = self.pid();
        signal_group(pgid, self.stop_signal);
        if !self.wait_group_gone(self.stop_timeout) {
            eprintln!(
                "{} (group {pgid}): {:?} still running {:?} after SIG{}: SIGKILL",
                self.name,
                self.processes(),
                self.stop_timeout,
                self.stop_signal
            );
            signal_group(pgid, "KILL");
            self.wait_group_gone(std::time::Duration::from_secs(5));
        }
        let left = self.processes();
        if left.is_empty() {
            let _ = self.child.wait();
        } else {
            // Reaping the leader now would free the group ID for reuse while processes remain in the group.
            eprintln!("{} (group {pgid}): {left:?} survived SIGKILL", self.name);
        }
        self.stopped = true;
        left
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A small etcd release tarball in upstream's layout (`etcd-v3.3.5-linux-amd64/{etcd,etcdctl,README.md}`),
/// made deterministically here (fixed names, modes, mtime 0, pinned tar and flate2 crates) so that its SHA-256
/// is the same on every run: the stand-in for the real release, which tests cannot download. Its "binaries" are
/// shell scripts. Returns the file's path and its SHA-256 (hex).
pub fn test_etcd_tarball() -> (PathBuf, String) {
    use sha2::Digest as _;
    static MADE: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let mut raw = Vec::new();
        {
            let mut b = tar::Builder::new(&mut raw);
            let top = "etcd-v3.3.5-linux-amd64";
            let mut dir = tar::Header::new_gnu();
            dir.set_entry_type(tar::EntryType::Directory);
            dir.set_mode(0o755);
            dir.set_size(0);
            dir.set_mtime(0);
            b.append_data(&mut dir, format!("{top}/"), std::io::empty())
                .expect("dir");
            for (name, mode, text) in [
                (
                    "etcd",
                    0o755,
                    "#!/bin/sh\necho 'etcd (hardway test stand-in)'\n",
                ),
                (
                    "etcdctl",
                    0o755,
                    "#!/bin/sh\necho 'etcdctl (hardway test stand-in)'\n",
                ),
                (
                    "README.md",
                    0o644,
                    "test tarball in the etcd release layout\n",
                ),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(mode);
                h.set_size(text.len() as u64);
                h.set_mtime(0);
                b.append_data(&mut h, format!("{top}/{name}"), text.as_bytes())
                    .expect("file");
            }
            b.finish().expect("tar");
        }
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::new(6));
        std::io::Write::write_all(&mut gz, &raw).expect("gz");
        let bytes = gz.finish().expect("gz");
        let sha = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("etcd-test-{sha}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("etcd-v3.3.5-linux-amd64.tar.gz");
        let tmp = dir.join(format!(".tmp.{}", std::process::id()));
        std::fs::write(&tmp, &bytes).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        (path, sha)
    })
    .clone()
}

/// recipes/seed.toml as the tests build it: identical but for the `[etcd]` lines, whose source is
/// [`test_etcd_tarball`] through a `file://` mirror (the real release cannot be downloaded here).
pub fn seed_text() -> String {
    let text = std::fs::read_to_string(repo().join("recipes/seed.toml")).expect("recipe");
    let (path, sha) = test_etcd_tarball();
    let mut out = String::new();
    let mut replaced = 0;
    for line in text.lines() {
        if line.starts_with("urls = ") {
            out.push_str(&format!("urls = [\"file://{}\"]", path.display()));
            replaced += 1;
        } else if line.starts_with("sha256 = ") {
            out.push_str(&format!("sha256 = \"{sha}\""));
            replaced += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert_eq!(
        replaced, 2,
        "recipes/seed.toml's [etcd] lines changed: update seed_text"
    );
    out
}
