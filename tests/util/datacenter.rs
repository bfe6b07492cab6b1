//! A simulated datacenter on this machine, for tests that run real daemons on real bundles (needs root).
//!
//! # What it builds
//! For a list of hosts — (name, IPv4 address, prefix length: a recipe's addresses, e.g. `10.240.0.10/24`) and
//! optionally each host's bundle — [`Datacenter::new`] creates:
//! - a **switch** network namespace holding a Linux bridge; it has no address and no route;
//! - one network namespace per host, joined to the bridge by a veth pair whose host end carries the host's address,
//!   and a **control** namespace ([`CONTROL`]) for clients, with one more free address of the same subnet (the
//!   highest unused one, or the caller's);
//! - loopback up everywhere, IPv6 off on every veth and on the bridge; before returning it asserts that each
//!   namespace has exactly the links it made, that the only IPv4 route of a host or of the control namespace is
//!   the connected subnet (no default route, nothing else), the switch has none, and every IPv6 route is on `lo`.
//!   Nothing is added to the root namespace: links are created from inside the switch namespace, and test
//!   addresses only ever exist inside the namespaces;
//! - per host a persistent private **mount namespace**, bound to a file (`unshare --mount=<file> --propagation
//!   private`) in a directory that is itself a private bind mount, in which `/etc`, `/usr/local` and `/var` are each
//!   one overlayfs mount: lower = the bundle's tree (if the bundle has it) over the real tree, upper = the host's
//!   scratch directory ([`Datacenter::upper`]). A bundle is a `.tar.gz` (extracted as root with `tar -xzpf`) or an
//!   already unpacked directory; with none, the host just gets private writable layers. The bundle's paths are
//!   thus the real paths for the host's processes, every process of a host sees the same files (one overlay mount
//!   per tree and host, shared by all of them), and nothing on the machine changes. `/run` is a private empty
//!   tmpfs per host (pid files, sockets; gone with the host). Everything else, `/tmp` included, is the machine's:
//!   a host can read the test's files by their paths, and must not write outside the trees above.
//!
//! Processes run with [`Datacenter::command`] (`nsenter --net=… --mount=… -- setpriv --pdeathsig KILL -- program`:
//! nsenter and setpriv both exec, so the child's PID is the program's) or, for servers, [`Datacenter::spawn`],
//! whose [`Daemon`] guard puts it in its own process group, logs its output to a file, and on drop sends SIGTERM
//! to the group, waits up to 5 s, sends SIGKILL, and reaps it. The control namespace has no mount namespace of its
//! own: its processes see the real filesystem (use it for clients only).
//!
//! # Names
//! Every run gets an id `hw` + the process id (5 base-36 digits) + a per-process counter (2 digits), e.g.
//! `hw0007x00`. Network namespaces are `<id>-switch`, `<id>-control`, `<id>-host-<name>`; links (at most 15
//! bytes) `<id>br`, `<id>p<n>` (switch side), `<id>e<n>` (host side). Creating anything that already exists fails
//! with a message naming it; nothing the harness did not create is ever removed.
//!
//! # Cleanup
//! Before creating each thing, the harness appends its name to `/run/hardway-test/<id>/names` (next to `owner`:
//! the creating process's PID and start time). Dropping the [`Datacenter`] — also while unwinding from a panic —
//! kills every process still inside one of its namespaces (found by comparing `/proc/<pid>/ns/{net,mnt}` with the
//! namespaces it created, killed by PID: never by name pattern, no pkill/killall), unmounts and removes the
//! mount-namespace files (the overlay mounts die with their namespace), removes the private bind mount, deletes
//! the network namespaces (and so the veths and the bridge), the scratch directory and the registry entry.
//! An interrupted run (Ctrl-C, SIGKILL, abort) cannot clean up: its daemons die with it (they are started with a
//! parent-death signal), but namespaces, mounts and files remain. The first [`Datacenter`] of the next test run
//! (any test using this harness, e.g. `cargo test datacenter`) removes what dead runs recorded
//! ([`sweep_leftovers`]): entries whose owner PID is gone or has another start time, never a live run's.
//! By hand: `ip netns del` the `netns` lines, `umount` the `mntns` and `bind` lines, `rm -r` the `scratch` lines.
//!
//! # Requirements
//! Root, `ip` (iproute2), `unshare`, `nsenter`, `setpriv`, `mount`, `umount` (util-linux), `tar`, `gzip`, and a
//! kernel with network namespaces and overlayfs, with `$TMPDIR` on a filesystem overlayfs accepts as upper layer
//! (ext4, xfs, tmpfs). [`Datacenter::available`] checks all that by trying it; a test without it fails when
//! `HARDWAY_REQUIRE_TOOLS=1` and is otherwise skipped with a `SKIPPED:` line, like [`super::have_tool`].
//!
//! ```ignore
//! if !Datacenter::available() { return; }
//! let dc = Datacenter::new(&[
//!     HostSpec::new("a", "10.240.0.10/24").bundle(built.out("a.tar.gz")),
//!     HostSpec::new("b", "10.240.0.11/24"),
//! ]);
//! let server = dc.spawn(dc.command("a", "python3").args(["-m", "http.server", "--bind", "10.240.0.10"]));
//! let out = ok(dc.command(CONTROL, "python3").args(["-c", CLIENT]));
//! ```

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// The name of the control namespace, for [`Datacenter::command`] and [`Datacenter::ip`].
pub const CONTROL: &str = "control";

/// Where runs register what they create.
pub const REGISTRY: &str = "/run/hardway-test";

/// The trees a bundle may hold, each an overlay in a host's mount namespace.
const TREES: [&str; 3] = ["etc", "usr/local", "var"];

/// How long a [`Daemon`] gets between SIGTERM and SIGKILL, and cleanup waits for killed processes.
const GRACE: Duration = Duration::from_secs(5);

/// One simulated host.
#[derive(Clone, Debug)]
pub struct HostSpec {
    pub name: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// A `.tar.gz` bundle or an unpacked directory holding `etc/`, `usr/local/`, `var/` (any of them).
    pub bundle: Option<PathBuf>,
}

impl HostSpec {
    /// `cidr` is `address/prefix`, e.g. `10.240.0.10/24`.
    pub fn new(name: &str, cidr: &str) -> HostSpec {
        let (ip, prefix) = cidr
            .split_once('/')
            .unwrap_or_else(|| panic!("{cidr:?}: expected address/prefix"));
        HostSpec {
            name: name.to_owned(),
            ip: ip
                .parse()
                .unwrap_or_else(|e| panic!("{cidr:?}: bad address: {e}")),
            prefix: prefix
                .parse()
                .unwrap_or_else(|e| panic!("{cidr:?}: bad prefix: {e}")),
            bundle: None,
        }
    }

    /// This host's bundle: a `.tar.gz` or an unpacked directory.
    pub fn bundle(mut self, bundle: impl Into<PathBuf>) -> HostSpec {
        self.bundle = Some(bundle.into());
        self
    }
}

/// A host (or the control namespace) as created.
struct Host {
    name: String,
    ip: Ipv4Addr,
    netns: String,
    /// The host-side veth.
    link: String,
    /// The switch-side veth.
    port: String,
    /// The host's own directory in the scratch directory; `None` for the control namespace.
    dir: Option<PathBuf>,
    /// The lower layer (unpacked bundle), if the host has a bundle.
    lower: Option<PathBuf>,
    /// The file the mount namespace is bound to, once created.
    mntns: Option<PathBuf>,
}

/// A simulated datacenter; everything it made is removed on drop (see the module documentation).
pub struct Datacenter {
    id: String,
    /// `/run/hardway-test/<id>`.
    run: PathBuf,
    scratch: Option<PathBuf>,
    network: Ipv4Addr,
    prefix: u8,
    switch: String,
    bridge: String,
    /// The hosts in the caller's order, then the control namespace.
    hosts: Vec<Host>,
    logs: AtomicU32,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();
static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();

fn base36(mut n: u32, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    while n > 0 {
        s.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    while s.len() < width {
        s.push(b'0');
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// A run id not used before by this process: `hw` + PID (5 base-36 digits) + counter (2 digits).
pub fn fresh_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    assert!(n < 36 * 36, "more than 1296 datacenters in one process");
    let id = format!("hw{}{}", base36(std::process::id(), 5), base36(n, 2));
    assert_eq!(id.len(), 9, "pid too large for the id scheme: {id}");
    id
}

/// Runs `cmd`; on failure panics with `what`, the command and its output. Returns stdout.
fn must(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what}: {cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, returning an error message on failure.
fn attempt(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip() -> Command {
    Command::new("ip")
}

/// `ip -n NS ARGS…`, asserting success.
fn ip_in(ns: &str, args: &[&str]) -> String {
    must(ip().arg("-n").arg(ns).args(args), &format!("in {ns}"))
}

fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// (device, inode) of a namespace file (follows /proc/<pid>/ns/* links).
fn ns_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, …].
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// A process's start time (clock ticks since boot), to tell a PID's reuse from its first owner.
fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Every PID in /proc.
fn pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// True when `pid` is gone or a zombie.
pub fn pid_dead(pid: u32) -> bool {
    match stat_fields(pid) {
        None => true,
        Some(f) => f.first().map(String::as_str) == Some("Z"),
    }
}

/// Sends `signal` (a name: TERM, KILL) to each target (a PID, or `-PGID` for a group), ignoring errors.
fn signal(signal: &str, targets: &[String]) {
    if targets.is_empty() {
        return;
    }
    // The shell's builtin kill: no dependency on procps, and targets are exact PIDs or process groups.
    let _ = Command::new("sh")
        .arg("-c")
        .arg("sig=$1; shift; kill -s \"$sig\" -- \"$@\" 2>/dev/null")
        .arg("sh")
        .arg(signal)
        .args(targets)
        .stdin(Stdio::null())
        .status();
}

/// Live (non-zombie) processes whose network or mount namespace is one of `ns`.
fn processes_in(ns: &HashSet<(u64, u64)>) -> Vec<u32> {
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            ["net", "mnt"].iter().any(|kind| {
                ns_id(Path::new(&format!("/proc/{pid}/ns/{kind}")))
                    .is_some_and(|id| ns.contains(&id))
            })
        })
        .filter(|&pid| !pid_dead(pid))
        .collect()
}

/// Mount points of this process's mount namespace.
fn mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .collect()
}

fn is_mount_point(path: &Path) -> bool {
    let p = path.to_string_lossy();
    mount_points().iter().any(|m| *m == p)
}

/// What a registry's `names` file lists.
#[derive(Default)]
struct Recorded {
    netns: Vec<String>,
    mntns: Vec<PathBuf>,
    binds: Vec<PathBuf>,
    scratch: Vec<PathBuf>,
}

impl Recorded {
    fn read(run: &Path) -> Recorded {
        let mut r = Recorded::default();
        let text = fs::read_to_string(run.join("names")).unwrap_or_default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("netns", v)) => r.netns.push(v.to_owned()),
                Some(("mntns", v)) => r.mntns.push(v.into()),
                Some(("bind", v)) => r.binds.push(v.into()),
                Some(("scratch", v)) => r.scratch.push(v.into()),
                _ => {}
            }
        }
        r
    }
}

/// Removes everything `run`'s registry lists, then the registry entry; returns what could not be removed.
fn cleanup(run: &Path) -> Vec<String> {
    let r = Recorded::read(run);
    let mut errors = Vec::new();

    // 1. Processes inside the namespaces: they keep namespaces and mounts alive.
    let ns: HashSet<(u64, u64)> = r
        .netns
        .iter()
        .map(|n| netns_path(n))
        .chain(r.mntns.iter().cloned())
        .filter_map(|p| ns_id(&p))
        .collect();
    let deadline = Instant::now() + GRACE;
    loop {
        let left = processes_in(&ns);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            errors.push(format!("processes {left:?} survived SIGKILL"));
            break;
        }
        signal("KILL", &left.iter().map(u32::to_string).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(20));
    }

    // 2. Mount namespaces: unbinding the last reference destroys the namespace and its overlay mounts. Removing the
    // file also detaches copies of the binding in other mount namespaces (e.g. of a datacenter made meanwhile).
    for f in r.mntns.iter().rev() {
        if is_mount_point(f)
            && let Err(e) = attempt(Command::new("umount").arg(f))
        {
            errors.push(e);
            let _ = attempt(Command::new("umount").arg("-l").arg(f));
        }
        if f.exists()
            && let Err(e) = fs::remove_file(f)
        {
            errors.push(format!("{}: {e}", f.display()));
        }
    }
    for b in r.binds.iter().rev() {
        if is_mount_point(b)
            && let Err(e) = attempt(Command::new("umount").arg(b))
        {
            errors.push(e);
        }
        if b.exists()
            && let Err(e) = fs::remove_dir(b)
        {
            errors.push(format!("{}: {e}", b.display()));
        }
    }

    // 3. Network namespaces, and with them the veths and the bridge.
    for n in r.netns.iter().rev() {
        if netns_path(n).exists()
            && let Err(e) = attempt(ip().args(["netns", "del", n]))
        {
            errors.push(e);
        }
    }

    // 4. Files: only directories this harness made (named hardway-dc-*), and never across a mount point.
    for s in &r.scratch {
        let ours = s
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("hardway-dc-"))
            || s.ends_with("scratch");
        if !ours || !s.exists() {
            continue;
        }
        let prefix = s.to_string_lossy().into_owned();
        if let Some(m) = mount_points()
            .iter()
            .find(|m| m.starts_with(&prefix) && m.len() > prefix.len())
        {
            errors.push(format!("{m} is still mounted: left {prefix}"));
            continue;
        }
        if let Err(e) = fs::remove_dir_all(s) {
            errors.push(format!("{}: {e}", s.display()));
        }
    }
    if errors.is_empty() {
        let _ = fs::remove_file(run.join("names"));
        let _ = fs::remove_file(run.join("owner"));
        if let Err(e) = fs::remove_dir(run) {
            errors.push(format!("{}: {e}", run.display()));
        }
    }
    errors
}

/// Removes what runs that are no longer alive registered under [`REGISTRY`] (their owner PID is gone or is now
/// another process); leaves live runs alone. Returns the ids cleaned. Runs once per process by itself, at the
/// first [`Datacenter::new`].
pub fn sweep_leftovers() -> Vec<String> {
    let mut cleaned = Vec::new();
    let Ok(entries) = fs::read_dir(REGISTRY) else {
        return cleaned;
    };
    for e in entries.flatten() {
        let run = e.path();
        let id = e.file_name().to_string_lossy().into_owned();
        if id.starts_with('.') {
            continue;
        }
        // No owner yet: being created right now (the owner is written first thing); leave it.
        let Ok(owner) = fs::read_to_string(run.join("owner")) else {
            continue;
        };
        let mut it = owner.split_whitespace();
        let (Some(pid), Some(start)) = (
            it.next().and_then(|p| p.parse::<u32>().ok()),
            it.next().and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        if start_time(pid) == Some(start) {
            continue;
        }
        let errors = cleanup(&run);
        if errors.is_empty() {
            eprintln!("datacenter: removed the leftovers of dead run {id}");
        } else {
            eprintln!(
                "datacenter: could not fully remove the leftovers of dead run {id}: {}",
                errors.join("; ")
            );
        }
        cleaned.push(id);
    }
    cleaned
}

/// Tries, once per process, what the harness needs: root, the tools, a network namespace and an overlay mount.
fn probe() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Err("the simulated datacenter needs root".into());
    }
    for tool in [
        "ip", "unshare", "nsenter", "setpriv", "mount", "umount", "tar", "gzip",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "the simulated datacenter needs {tool}, which is not installed"
            ));
        }
    }
    let t = tempfile::Builder::new()
        .prefix("hardway-dc-probe-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    for d in ["u", "w"] {
        fs::create_dir(t.path().join(d)).map_err(|e| format!("temp dir: {e}"))?;
    }
    let opts = format!(
        "lowerdir=/etc,upperdir={0}/u,workdir={0}/w",
        t.path().display()
    );
    // A throwaway network and mount namespace: both vanish with the process.
    attempt(
        Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--"])
            .args(["mount", "-t", "overlay", "overlay", "-o", &opts, "/etc"]),
    )
    .map_err(|e| {
        format!("cannot make a network namespace with an overlay mount ($TMPDIR must be on ext4, xfs or tmpfs): {e}")
    })?;
    Ok(())
}

/// Reads a bundle directory's top level: which of [`TREES`] it has; panics on anything else.
fn bundle_trees(dir: &Path, what: &Path) -> Vec<&'static str> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.expect("bundle entry");
        let name = e.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            "etc" => found.push("etc"),
            "var" => found.push("var"),
            "usr" => {
                for u in fs::read_dir(e.path()).expect("bundle usr/") {
                    let u = u.expect("bundle entry");
                    assert!(
                        u.file_name() == "local",
                        "bundle {} holds usr/{}: only etc/, usr/local/ and var/ can be overlaid",
                        what.display(),
                        u.file_name().to_string_lossy()
                    );
                    found.push("usr/local");
                }
            }
            other => panic!(
                "bundle {} holds {other}: only etc/, usr/local/ and var/ can be overlaid",
                what.display()
            ),
        }
    }
    found
}

/// A host name usable in a namespace name.
fn check_name(name: &str) {
    assert!(
        !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "host name {name:?}: use 1 to 40 of A-Z a-z 0-9 - _ ."
    );
    assert!(
        name != CONTROL,
        "host name {CONTROL:?} is the control namespace's"
    );
}

fn network_of(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ipv4Addr::from(u32::from(ip) & mask)
}

impl Datacenter {
    /// True when this machine can host a datacenter (root, tools, network namespaces, overlayfs). When it
    /// cannot: panics if `HARDWAY_REQUIRE_TOOLS=1`, else prints a `SKIPPED:` line and returns false.
    pub fn available() -> bool {
        match AVAILABLE.get_or_init(probe) {
            Ok(()) => true,
            Err(why) => {
                if std::env::var("HARDWAY_REQUIRE_TOOLS").as_deref() == Ok("1") {
                    panic!(
                        "{why} (HARDWAY_REQUIRE_TOOLS=1); run the tests as root with .ci/run's packages"
                    );
                }
                eprintln!("SKIPPED: {why}; set HARDWAY_REQUIRE_TOOLS=1 to make this a failure");
                false
            }
        }
    }

    /// The hosts, and a control namespace on the highest free address of their subnet.
    pub fn new(hosts: &[HostSpec]) -> Datacenter {
        Datacenter::create(hosts, None, &fresh_id())
    }

    /// The hosts, and a control namespace at `control` (in the hosts' subnet, used by none).
    pub fn with_control(hosts: &[HostSpec], control: Ipv4Addr) -> Datacenter {
        Datacenter::create(hosts, Some(control), &fresh_id())
    }

    /// The general constructor: `id` names everything (see the module documentation; [`fresh_id`] makes one).
    pub fn create(hosts: &[HostSpec], control: Option<Ipv4Addr>, id: &str) -> Datacenter {
        SWEEP.call_once(|| {
            sweep_leftovers();
        });
        assert!(
            id.len() <= 9 && id.starts_with("hw") && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "datacenter id {id:?}: `hw` and at most 7 letters or digits"
        );
        assert!(!hosts.is_empty(), "a datacenter needs at least one host");
        assert!(hosts.len() < 36 * 36, "too many hosts");

        // One subnet, distinct names and addresses.
        let prefix = hosts[0].prefix;
        assert!(
            (8..=30).contains(&prefix),
            "prefix /{prefix}: use /8 to /30"
        );
        let network = network_of(hosts[0].ip, prefix);
        let broadcast = Ipv4Addr::from(u32::from(network) | (u32::MAX >> prefix));
        let mut names = HashSet::new();
        let mut used = HashSet::new();
        for h in hosts {
            check_name(&h.name);
            assert!(names.insert(h.name.as_str()), "host {} twice", h.name);
            assert!(
                h.prefix == prefix && network_of(h.ip, prefix) == network,
                "host {} ({}/{}) is not in {network}/{prefix}: all hosts share one subnet",
                h.name,
                h.ip,
                h.prefix
            );
            assert!(
                h.ip != network && h.ip != broadcast,
                "host {}: {} is the subnet's network or broadcast address",
                h.name,
                h.ip
            );
            assert!(used.insert(h.ip), "address {} used twice", h.ip);
        }
        let control = match control {
            Some(c) => {
                assert!(
                    network_of(c, prefix) == network && c != network && c != broadcast,
                    "control address {c} is not a host address of {network}/{prefix}"
                );
                assert!(!used.contains(&c), "control address {c} is a host's");
                c
            }
            None => (u32::from(network) + 1..u32::from(broadcast))
                .rev()
                .map(Ipv4Addr::from)
                .find(|a| !used.contains(a))
                .expect("no free address left for the control namespace"),
        };

        // The registry entry, before anything else exists.
        let run = Path::new(REGISTRY).join(id);
        fs::create_dir_all(REGISTRY).unwrap_or_else(|e| panic!("{REGISTRY}: {e}"));
        fs::create_dir(&run).unwrap_or_else(|e| {
            panic!(
                "datacenter {id}: cannot create {}: {e} (a run with this id exists or was left behind)",
                run.display()
            )
        });
        let me = std::process::id();
        fs::write(
            run.join("owner"),
            format!("{me} {}\n", start_time(me).expect("own start time")),
        )
        .expect("registry owner");

        let mut specs: Vec<(String, Ipv4Addr, String, Option<&Path>)> = hosts
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    h.ip,
                    format!("{id}-host-{}", h.name),
                    h.bundle.as_deref(),
                )
            })
            .collect();
        specs.push((CONTROL.to_owned(), control, format!("{id}-control"), None));

        let mut dc = Datacenter {
            id: id.to_owned(),
            run,
            scratch: None,
            network,
            prefix,
            switch: format!("{id}-switch"),
            bridge: format!("{id}br"),
            hosts: specs
                .iter()
                .enumerate()
                .map(|(i, (name, ip, netns, _))| Host {
                    name: name.clone(),
                    ip: *ip,
                    netns: netns.clone(),
                    link: format!("{id}e{}", base36(i as u32, 1)),
                    port: format!("{id}p{}", base36(i as u32, 1)),
                    dir: None,
                    lower: None,
                    mntns: None,
                })
                .collect(),
            logs: AtomicU32::new(0),
        };
        // From here on a panic drops `dc`, which removes what was made so far.
        for h in &dc.hosts {
            assert!(
                h.link.len() <= 15 && h.port.len() <= 15,
                "link name too long"
            );
        }
        dc.make_scratch();
        dc.make_network();
        for (i, spec) in specs.iter().take(hosts.len()).enumerate() {
            dc.make_host_files(i, spec.3);
        }
        dc.assert_isolated();
        dc
    }

    /// Appends `kind value` to the registry, before the thing is created.
    fn record(&self, kind: &str, value: &str) {
        assert!(!value.contains('\n'), "newline in {value:?}");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.run.join("names"))
            .expect("registry names");
        writeln!(f, "{kind} {value}").expect("registry write");
        f.sync_data().expect("registry sync");
    }

    fn make_scratch(&mut self) {
        let tmp = tempfile::Builder::new()
            .prefix("hardway-dc-")
            .tempdir()
            .expect("scratch dir")
            .keep();
        let tmp = fs::canonicalize(&tmp).expect("scratch dir");
        // The scratch directory holds upper layers: it must not lie inside an overlaid tree.
        let scratch = if TREES
            .iter()
            .any(|t| tmp.starts_with(Path::new("/").join(t)))
        {
            fs::remove_dir(&tmp).expect("scratch dir");
            self.run.join("scratch")
        } else {
            tmp
        };
        let text = scratch.to_string_lossy().into_owned();
        assert!(
            !text.contains([',', ':', '\\', ' ', '\n']),
            "scratch dir {text:?} has a character overlayfs options cannot carry; set TMPDIR"
        );
        self.record("scratch", &text);
        fs::create_dir_all(&scratch).expect("scratch dir");
        fs::create_dir_all(scratch.join("logs")).expect("logs dir");
        self.scratch = Some(scratch);
    }

    fn add_netns(&self, name: &str) {
        assert!(
            !netns_path(name).exists(),
            "network namespace {name} already exists (left by a crashed run? see {REGISTRY})"
        );
        self.record("netns", name);
        must(
            ip().args(["netns", "add", name]),
            "creating a network namespace",
        );
        // IPv6 off on every link made from now on (lo keeps ::1); loopback up.
        must(
            Command::new("nsenter")
                .arg(format!("--net={}", netns_path(name).display()))
                .args(["--", "sh", "-c"])
                .arg("f=/proc/sys/net/ipv6/conf/default/disable_ipv6; [ ! -e $f ] || echo 1 > $f"),
            &format!("disabling IPv6 in {name}"),
        );
        ip_in(name, &["link", "set", "lo", "up"]);
    }

    fn make_network(&mut self) {
        self.add_netns(&self.switch);
        for h in &self.hosts {
            self.add_netns(&h.netns);
        }
        ip_in(
            &self.switch,
            &["link", "add", &self.bridge, "type", "bridge"],
        );
        ip_in(&self.switch, &["link", "set", &self.bridge, "up"]);
        let prefix = self.prefix.to_string();
        for h in &self.hosts {
            ip_in(
                &self.switch,
                &[
                    "link", "add", &h.port, "type", "veth", "peer", "name", &h.link, "netns",
                    &h.netns,
                ],
            );
            ip_in(
                &self.switch,
                &["link", "set", &h.port, "master", &self.bridge, "up"],
            );
            ip_in(
                &h.netns,
                &["addr", "add", &format!("{}/{prefix}", h.ip), "dev", &h.link],
            );
            ip_in(&h.netns, &["link", "set", &h.link, "up"]);
        }
    }

    /// The host's lower, upper and work directories and its mount namespace with one overlay per tree.
    fn make_host_files(&mut self, i: usize, bundle: Option<&Path>) {
        let scratch = self.scratch.clone().expect("scratch");
        let dir = scratch.join(format!("host-{}", self.hosts[i].name));
        fs::create_dir(&dir).expect("host dir");
        self.hosts[i].dir = Some(dir.clone());

        let lower = bundle.map(|b| {
            assert!(b.exists(), "bundle {} does not exist", b.display());
            if b.is_dir() {
                fs::canonicalize(b).expect("bundle dir")
            } else {
                let to = dir.join("bundle");
                fs::create_dir(&to).expect("bundle dir");
                must(
                    Command::new("tar").arg("-xzpf").arg(b).arg("-C").arg(&to),
                    &format!("extracting bundle {}", b.display()),
                );
                to
            }
        });
        let trees = lower
            .as_deref()
            .map(|l| bundle_trees(l, bundle.expect("bundle")))
            .unwrap_or_default();
        if let Some(l) = &lower {
            let text = l.to_string_lossy();
            assert!(
                !text.contains([',', ':', '\\', ' ', '\n']),
                "bundle dir {text:?} has a character overlayfs options cannot carry"
            );
        }
        self.hosts[i].lower = lower.clone();

        // The mount namespace, bound to a file in a private bind mount (made with the first host).
        let nsdir = self.run.join("ns");
        if !nsdir.exists() {
            fs::create_dir(&nsdir).expect("ns dir");
            self.record("bind", &nsdir.to_string_lossy());
            must(
                Command::new("mount").arg("--bind").arg(&nsdir).arg(&nsdir),
                "bind-mounting the mount-namespace directory",
            );
            must(
                Command::new("mount").arg("--make-private").arg(&nsdir),
                "making the mount-namespace directory private",
            );
        }
        let file = nsdir.join(&self.hosts[i].name);
        fs::write(&file, "").expect("mount namespace file");
        self.record("mntns", &file.to_string_lossy());
        let mut mntns = OsString::from("--mount=");
        mntns.push(&file);
        must(
            Command::new("unshare")
                .arg(&mntns)
                .args(["--propagation", "private", "true"]),
            &format!("creating host {}'s mount namespace", self.hosts[i].name),
        );
        self.hosts[i].mntns = Some(file);

        for tree in TREES {
            let real = Path::new("/").join(tree);
            let upper = dir.join("upper").join(tree);
            let work = dir.join("work").join(tree.replace('/', "-"));
            fs::create_dir_all(&upper).expect("upper dir");
            fs::create_dir_all(&work).expect("work dir");
            // The merged tree's root takes the upper root's attributes: give it the real tree's.
            let mode = fs::metadata(&real)
                .unwrap_or_else(|e| panic!("{}: {e}", real.display()))
                .permissions()
                .mode();
            fs::set_permissions(&upper, fs::Permissions::from_mode(mode)).expect("chmod upper");
            let lowerdir = match &lower {
                Some(l) if trees.contains(&tree) => {
                    format!("{}:{}", l.join(tree).display(), real.display())
                }
                _ => real.display().to_string(),
            };
            let opts = format!(
                "lowerdir={lowerdir},upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
            must(
                Command::new("nsenter")
                    .arg(&mntns)
                    .args(["--", "mount", "-t", "overlay", "overlay", "-o", &opts])
                    .arg(&real),
                &format!(
                    "mounting host {}'s overlay on {} (is $TMPDIR on ext4, xfs or tmpfs?)",
                    self.hosts[i].name,
                    real.display()
                ),
            );
        }
        // A private, empty /run (pid files, sockets): hosts must not meet there, nor change the machine's.
        must(
            Command::new("nsenter").arg(&mntns).args([
                "--",
                "sh",
                "-c",
                "mount -t tmpfs -o mode=0755,nosuid,nodev hardway-run /run && mkdir -m 1777 /run/lock",
            ]),
            &format!("mounting host {}'s /run", self.hosts[i].name),
        );
    }

    /// Asserts each namespace's links and routes: connected subnet only, nothing over IPv6 but loopback.
    fn assert_isolated(&self) {
        let links = |ns: &str| -> Vec<String> {
            let mut l: Vec<String> = ip_in(ns, &["-o", "link", "show"])
                .lines()
                .filter_map(|l| l.split(": ").nth(1))
                .map(|n| n.split('@').next().unwrap_or(n).to_owned())
                .collect();
            l.sort();
            l
        };
        let v6_only_lo = |ns: &str| {
            let routes = ip_in(ns, &["-6", "route", "show", "table", "all"]);
            for r in routes.lines() {
                assert!(
                    r.contains(" dev lo "),
                    "{ns} has an IPv6 route off loopback: {r}\n{routes}"
                );
            }
        };
        let connected = format!("{}/{}", self.network, self.prefix);
        for h in &self.hosts {
            let mut want = vec!["lo".to_owned(), h.link.clone()];
            want.sort();
            assert_eq!(links(&h.netns), want, "links of {}", h.netns);
            let main = ip_in(&h.netns, &["-4", "route", "show"]);
            let lines: Vec<&str> = main.lines().collect();
            assert!(
                lines.len() == 1
                    && lines[0].starts_with(&format!("{connected} dev {} ", h.link))
                    && lines[0].contains(&format!("src {}", h.ip)),
                "{} must have only the connected route {connected}, has:\n{main}",
                h.netns
            );
            let all = ip_in(&h.netns, &["-4", "route", "show", "table", "all"]);
            for r in all.lines() {
                assert!(
                    r == lines[0] || r.contains(" table local "),
                    "{} has a route besides the connected subnet: {r}",
                    h.netns
                );
            }
            v6_only_lo(&h.netns);
        }
        let mut want: Vec<String> = self.hosts.iter().map(|h| h.port.clone()).collect();
        want.push("lo".into());
        want.push(self.bridge.clone());
        want.sort();
        assert_eq!(links(&self.switch), want, "links of {}", self.switch);
        let main = ip_in(&self.switch, &["-4", "route", "show"]);
        assert!(
            main.trim().is_empty(),
            "{} has routes:\n{main}",
            self.switch
        );
        v6_only_lo(&self.switch);
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name:?} in datacenter {}", self.id))
    }

    /// This run's id; every name it made starts with it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The host names, in the caller's order (not the control namespace).
    pub fn hosts(&self) -> Vec<&str> {
        self.hosts[..self.hosts.len() - 1]
            .iter()
            .map(|h| h.name.as_str())
            .collect()
    }

    /// A host's (or [`CONTROL`]'s) address.
    pub fn ip(&self, host: &str) -> Ipv4Addr {
        self.host(host).ip
    }

    /// The subnet, e.g. `10.240.0.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    /// A host's (or [`CONTROL`]'s) network namespace name, as `ip netns list` shows it.
    pub fn netns(&self, host: &str) -> &str {
        &self.host(host).netns
    }

    /// Every network namespace this datacenter made (switch, hosts, control).
    pub fn netns_names(&self) -> Vec<String> {
        std::iter::once(self.switch.clone())
            .chain(self.hosts.iter().map(|h| h.netns.clone()))
            .collect()
    }

    /// The file a host's mount namespace is bound to (`nsenter --mount=<it>`).
    pub fn mount_ns(&self, host: &str) -> &Path {
        self.host(host)
            .mntns
            .as_deref()
            .unwrap_or_else(|| panic!("{host} has no mount namespace"))
    }

    /// The host's upper layers: `<upper>/etc`, `<upper>/usr/local`, `<upper>/var` hold every file the host's
    /// processes created or changed, at its real path below `<upper>`. Read it freely; write through the host
    /// ([`Datacenter::command`]): changing an upper layer under a mounted overlay is undefined.
    pub fn upper(&self, host: &str) -> PathBuf {
        self.host(host)
            .dir
            .as_ref()
            .unwrap_or_else(|| panic!("{host} has no overlay"))
            .join("upper")
    }

    /// The host's unpacked bundle (the overlays' lower layer), if it has one.
    pub fn lower(&self, host: &str) -> Option<&Path> {
        self.host(host).lower.as_deref()
    }

    /// The scratch directory (hosts' layers, daemon logs), removed on drop.
    pub fn scratch(&self) -> &Path {
        self.scratch.as_deref().expect("scratch")
    }

    /// The registry entry, `/run/hardway-test/<id>`.
    pub fn registry(&self) -> &Path {
        &self.run
    }

    /// A command that runs `program` inside `host`'s network and mount namespaces ([`CONTROL`]: network only),
    /// killed if the thread that spawns it exits. Its working directory is `/` (entering a mount namespace resets
    /// it; `current_dir` has no effect): use absolute paths. `program` is looked up on PATH inside the host, so
    /// the bundle's `/usr/local/bin` counts.
    pub fn command(&self, host: &str, program: impl AsRef<OsStr>) -> Command {
        let h = self.host(host);
        let mut c = Command::new("nsenter");
        let mut net = OsString::from("--net=");
        net.push(netns_path(&h.netns));
        c.arg(net);
        if let Some(m) = &h.mntns {
            let mut mnt = OsString::from("--mount=");
            mnt.push(m);
            c.arg(mnt);
        }
        c.args(["--", "setpriv", "--pdeathsig", "KILL", "--"])
            .arg(program);
        c
    }

    /// Reads a file as `host` sees it (`cat` inside the host); `None` if it cannot.
    pub fn read(&self, host: &str, path: &str) -> Option<Vec<u8>> {
        let out = self
            .command(host, "cat")
            .arg("--")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .expect("spawn cat");
        out.status.success().then_some(out.stdout)
    }

    /// Starts a long-running process (usually a [`Datacenter::command`]) in its own process group, its stdout and
    /// stderr going to a log file; the guard stops it. The guard borrows the datacenter, so it goes first.
    pub fn spawn(&self, cmd: &mut Command) -> Daemon<'_> {
        let n = self.logs.fetch_add(1, Ordering::SeqCst);
        let log = self.scratch().join("logs").join(format!("daemon-{n}.log"));
        let out = fs::File::create(&log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Daemon {
            pid: child.id(),
            child: Some(child),
            log,
            what: format!("{cmd:?}"),
            _dc: PhantomData,
        }
    }
}

impl Drop for Datacenter {
    fn drop(&mut self) {
        let errors = cleanup(&self.run);
        if !errors.is_empty() {
            // Panicking here could abort an unwinding test; the next run's sweep retries.
            eprintln!(
                "datacenter {}: cleanup incomplete (the next run retries): {}",
                self.id,
                errors.join("; ")
            );
        }
    }
}

/// A long-running process in a host; dropping it stops it (SIGTERM to its group, 5 s, SIGKILL) and reaps it.
pub struct Daemon<'dc> {
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    what: String,
    _dc: PhantomData<&'dc Datacenter>,
}

impl Daemon<'_> {
    /// The program's PID (nsenter and setpriv exec it), also its process group.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What it printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// True while the process has not exited.
    pub fn running(&self) -> bool {
        !pid_dead(self.pid())
    }

    /// Waits until the log contains `needle`; panics with the log if the process exits or `timeout` passes.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return;
            }
            assert!(
                self.running(),
                "{} exited before printing {needle:?}:\n{log}",
                self.what
            );
            assert!(
                Instant::now() < deadline,
                "{} did not print {needle:?} within {timeout:?}:\n{log}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process group and returns the program's exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("child");
        // The leader is not reaped until the end, so its PID cannot name another group meanwhile.
        let group = format!("-{}", child.id());
        for sig in ["TERM", "KILL"] {
            if group_members(child.id()).is_empty() {
                break;
            }
            signal(sig, std::slice::from_ref(&group));
            let deadline = Instant::now() + GRACE;
            while !group_members(child.id()).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        child.wait().expect("reap daemon")
    }
}

/// Live members of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let pgid = pgid.to_string();
    pids()
        .into_iter()
        .filter(|&p| {
            stat_fields(p).is_some_and(|f| {
                f.get(2) == Some(&pgid) && f.first().map(String::as_str) != Some("Z")
            })
        })
        .collect()
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
    }
}
