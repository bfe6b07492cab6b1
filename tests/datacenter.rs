//! The simulated datacenter (tests/util/datacenter.rs): real namespaces, a bridge, overlays and servers, and that
//! everything is gone afterwards — after a normal drop, after a panic, and after a dead run.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::datacenter::{
    CONTROL, Datacenter, HostSpec, REGISTRY, fresh_id, pid_dead, sweep_leftovers,
};
use crate::util::*;

/// An HTTP/1.0 GET with Python's sockets (no proxy settings apply): argv host, port, path; retries connecting
/// for 10 s; prints the whole response.
const GET: &str = r#"
import socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection((host, port), timeout=2)
        break
    except OSError as e:
        if time.time() > deadline:
            sys.exit(f"cannot connect to {host}:{port}: {e}")
        time.sleep(0.05)
s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
"#;

/// Everything a datacenter made, to check after it is gone.
struct Trace {
    id: String,
    netns: Vec<String>,
    scratch: PathBuf,
    registry: PathBuf,
    pids: Vec<u32>,
}

impl Trace {
    fn of(dc: &Datacenter) -> Trace {
        Trace {
            id: dc.id().to_owned(),
            netns: dc.netns_names(),
            scratch: dc.scratch().to_owned(),
            registry: dc.registry().to_owned(),
            pids: Vec::new(),
        }
    }

    /// Asserts that nothing of it is left: namespaces, links, mounts in any process, processes, directories.
    fn assert_gone(&self) {
        let listed = ok(Command::new("ip").args(["netns", "list"]));
        for n in &self.netns {
            assert!(
                !listed
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(n)),
                "{n} still listed:\n{listed}"
            );
            assert!(
                !Path::new("/run/netns").join(n).exists(),
                "/run/netns/{n} left"
            );
        }
        let links = ok(Command::new("ip").args(["-o", "link", "show"]));
        assert!(
            !links.contains(&self.id),
            "a link of {} in the root namespace:\n{links}",
            self.id
        );
        let scratch = self.scratch.to_string_lossy().into_owned();
        // Overlay mounts name their upper directory in the scratch directory: no process may still see one.
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            if !e
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let Ok(info) = std::fs::read_to_string(e.path().join("mountinfo")) else {
                continue;
            };
            for l in info.lines() {
                assert!(
                    !l.contains(&scratch) && !l.contains(&self.id),
                    "process {} still has a mount of {}: {l}",
                    e.file_name().to_string_lossy(),
                    self.id
                );
            }
        }
        for &pid in &self.pids {
            assert!(pid_dead(pid), "process {pid} is still alive");
        }
        assert!(!self.scratch.exists(), "{} left", self.scratch.display());
        assert!(!self.registry.exists(), "{} left", self.registry.display());
    }
}

/// (device, inode) of a namespace.
fn ns(path: impl AsRef<Path>) -> (u64, u64) {
    let m = std::fs::metadata(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()));
    (m.dev(), m.ino())
}

#[test]
fn two_hosts_serve_the_control_namespace_and_stay_isolated() {
    if !Datacenter::available() || !have_tool("python3") {
        return;
    }
    let t = TestDir::new();
    // Host a: an unpacked bundle; host b: a .tar.gz made by GNU tar, with a mode to keep.
    t.write("a/etc/hardway-test/x", "from a's bundle\n");
    t.write("b/etc/hardway-test/y", "from b's bundle\n");
    std::fs::set_permissions(
        t.join("b/etc/hardway-test/y"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .expect("chmod");
    ok(Command::new("tar")
        .arg("-czf")
        .arg(t.join("b.tar.gz"))
        .arg("-C")
        .arg(t.join("b"))
        .arg("etc"));
    for real in ["/etc/hardway-test", "/var/lib/foo"] {
        assert!(
            !Path::new(real).exists(),
            "{real} exists on this machine: the test cannot tell"
        );
    }

    let dc = Datacenter::new(&[
        HostSpec::new("a", "10.240.0.10/24").bundle(t.join("a")),
        HostSpec::new("b", "10.240.0.11/24").bundle(t.join("b.tar.gz")),
    ]);
    let mut trace = Trace::of(&dc);
    assert_eq!(dc.ip("a").to_string(), "10.240.0.10");
    assert_eq!(
        dc.ip(CONTROL).to_string(),
        "10.240.0.254",
        "highest free address"
    );
    assert_eq!(dc.subnet(), "10.240.0.0/24");
    assert_eq!(dc.hosts(), ["a", "b"]);

    // Each namespace has its address and no way out: no route to the internet or to another subnet.
    for (host, addr) in [
        ("a", "10.240.0.10/24"),
        ("b", "10.240.0.11/24"),
        (CONTROL, "10.240.0.254/24"),
    ] {
        let addrs = ok(dc.command(host, "ip").args(["-o", "-4", "addr", "show"]));
        let mut got: Vec<&str> = addrs
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .collect();
        got.sort();
        let mut want = vec![addr, "127.0.0.1/8"];
        want.sort();
        assert_eq!(got, want, "{host}'s addresses");
        let routes = ok(dc.command(host, "ip").args(["route", "show"]));
        assert_eq!(routes.lines().count(), 1, "{host}: {routes}");
        assert!(routes.starts_with("10.240.0.0/24 dev "), "{host}: {routes}");
        for outside in ["8.8.8.8", "10.240.1.1", "1.1.1.1"] {
            let err = fails(dc.command(host, "ip").args(["route", "get", outside]));
            assert!(err.contains("unreachable"), "{host} → {outside}: {err}");
        }
        let v6 = ok(dc.command(host, "ip").args(["-6", "route", "show"]));
        assert!(v6.lines().all(|l| l.contains(" dev lo ")), "{host}: {v6}");
    }

    // A real server in a, bound to a's address and serving a's /etc/hardway-test.
    let server = dc.spawn(dc.command("a", "python3").args([
        "-u",
        "-m",
        "http.server",
        "8080",
        "--bind",
        "10.240.0.10",
        "--directory",
        "/etc/hardway-test",
    ]));
    server.wait_for_log(
        "Serving HTTP on 10.240.0.10 port 8080",
        Duration::from_secs(20),
    );
    let pid = server.pid();
    trace.pids.push(pid);
    // The PID the guard kills is the server itself, inside a's namespaces.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("http.server"),
        "{cmdline:?}"
    );
    assert_eq!(
        ns(format!("/proc/{pid}/ns/net")),
        ns(Path::new("/run/netns").join(dc.netns("a")))
    );
    assert_eq!(ns(format!("/proc/{pid}/ns/mnt")), ns(dc.mount_ns("a")));
    assert_ne!(ns(format!("/proc/{pid}/ns/net")), ns("/proc/self/ns/net"));

    let get = |from: &str, path: &str| {
        ok(dc
            .command(from, "python3")
            .args(["-c", GET, "10.240.0.10", "8080", path]))
    };
    let body = get(CONTROL, "/x");
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    assert!(body.ends_with("from a's bundle\n"), "{body}");
    assert!(
        server.log().contains("10.240.0.254 - - "),
        "the control address connected:\n{}",
        server.log()
    );
    // Host to host works too, and b's bundle is not a's.
    assert!(get("b", "/x").ends_with("from a's bundle\n"));
    assert!(get(CONTROL, "/y").starts_with("HTTP/1.0 404"));
    assert!(
        server.log().contains("10.240.0.11 - - "),
        "{}",
        server.log()
    );

    // Files: each host sees its bundle at the real paths, the machine and the other host do not.
    assert_eq!(
        dc.read("a", "/etc/hardway-test/x").as_deref(),
        Some(&b"from a's bundle\n"[..])
    );
    assert_eq!(dc.read("b", "/etc/hardway-test/x"), None);
    assert_eq!(
        dc.read("b", "/etc/hardway-test/y").as_deref(),
        Some(&b"from b's bundle\n"[..])
    );
    assert_eq!(dc.read("a", "/etc/hardway-test/y"), None);
    assert_eq!(
        ok(dc
            .command("b", "stat")
            .args(["-c", "%a %u", "/etc/hardway-test/y"])),
        "640 0\n"
    );
    assert!(
        !Path::new("/etc/hardway-test").exists(),
        "the bundle leaked onto the machine"
    );
    // The rest of /etc is the machine's.
    assert_eq!(
        dc.read("a", "/etc/os-release"),
        Some(std::fs::read("/etc/os-release").expect("os-release"))
    );

    // Writes land in the host's upper layer only, and the host's other processes (the server) see them.
    ok(dc.command("a", "sh").args([
        "-c",
        "mkdir -p /var/lib/foo && echo written by a > /var/lib/foo/bar && echo late > /etc/hardway-test/late",
    ]));
    assert_eq!(
        std::fs::read_to_string(dc.upper("a").join("var/lib/foo/bar")).expect("upper"),
        "written by a\n"
    );
    assert_eq!(
        std::fs::read_to_string(dc.upper("a").join("etc/hardway-test/late")).expect("upper"),
        "late\n"
    );
    assert!(
        !Path::new("/var/lib/foo").exists(),
        "a's write reached the real /var"
    );
    assert_eq!(dc.read("b", "/var/lib/foo/bar"), None);
    assert!(!dc.upper("b").join("var/lib/foo").exists());
    assert!(get(CONTROL, "/late").ends_with("late\n"));
    // The bundle itself (the lower layer) is untouched.
    assert!(!t.join("a/etc/hardway-test/late").exists());

    drop(server);
    assert!(pid_dead(pid), "server {pid} survived its guard");
    drop(dc);
    trace.assert_gone();
    assert!(
        t.join("a/etc/hardway-test/x").exists(),
        "the caller's bundle directory was removed"
    );
}

#[test]
fn a_host_without_a_bundle_gets_private_writable_trees() {
    if !Datacenter::available() {
        return;
    }
    let dc = Datacenter::with_control(
        &[HostSpec::new("solo", "192.168.77.2/28")],
        "192.168.77.3".parse().expect("ip"),
    );
    let trace = Trace::of(&dc);
    assert_eq!(dc.ip(CONTROL).to_string(), "192.168.77.3");
    assert!(dc.lower("solo").is_none());
    let marker = format!("/usr/local/hardway-test-{}", dc.id());
    ok(dc.command("solo", "sh").args([
        "-c",
        &format!(
            "echo one > {marker} && echo two > /etc/hardway-test-{}",
            dc.id()
        ),
    ]));
    // A later process of the host sees the earlier one's files: one persistent mount namespace.
    assert_eq!(dc.read("solo", &marker).as_deref(), Some(&b"one\n"[..]));
    assert!(
        !Path::new(&marker).exists(),
        "the write reached the real /usr/local"
    );
    assert_eq!(
        std::fs::read_to_string(
            dc.upper("solo")
                .join(format!("usr/local/hardway-test-{}", dc.id()))
        )
        .expect("upper"),
        "one\n"
    );
    assert!(
        dc.upper("solo")
            .join(format!("etc/hardway-test-{}", dc.id()))
            .exists()
    );
    // /run is the host's own, empty at first, kept across its processes, not the machine's.
    let run = format!("/run/hardway-test-{}", dc.id());
    assert_eq!(ok(dc.command("solo", "ls").args(["-A", "/run"])), "lock\n");
    ok(dc.command("solo", "touch").arg(&run));
    ok(dc.command("solo", "test").args(["-e", &run]));
    assert!(
        !Path::new(&run).exists(),
        "the host wrote the machine's /run"
    );
    // The control namespace has no overlay: it sees the real filesystem.
    assert_eq!(dc.read(CONTROL, &marker), None);
    // The host reaches the control namespace and nothing else.
    ok(dc
        .command("solo", "ip")
        .args(["route", "get", "192.168.77.3"]));
    fails(
        dc.command("solo", "ip")
            .args(["route", "get", "192.168.77.17"]),
    );
    drop(dc);
    trace.assert_gone();
}

#[test]
fn a_real_bundle_puts_its_files_at_the_real_paths() {
    if !Datacenter::available() {
        return;
    }
    let b = Built::seed_recipe();
    // The seed recipe's addresses, on a /24, only inside the namespaces.
    let dc = Datacenter::new(&[
        HostSpec::new("master1", "10.128.15.221/24").bundle(b.out("master1.tar.gz")),
        HostSpec::new("lb", "10.128.15.226/24").bundle(b.out("lb.tar.gz")),
    ]);
    let trace = Trace::of(&dc);
    // GNU tar compares every member (contents, mode, owner, mtime) with what the host sees at its path.
    for host in ["master1", "lb"] {
        let bundle = b.out(&format!("{host}.tar.gz"));
        ok(dc
            .command(host, "tar")
            .arg("-dzf")
            .arg(&bundle)
            .args(["-C", "/"]));
    }
    let err = fails(
        dc.command("lb", "tar")
            .arg("-dzf")
            .arg(b.out("master1.tar.gz"))
            .args(["-C", "/"]),
    );
    assert!(
        err.contains("etc/etcd"),
        "lb must not see master1's files: {err}"
    );
    drop(dc);
    trace.assert_gone();
}

#[test]
fn a_panic_inside_a_test_still_cleans_everything_up() {
    if !Datacenter::available() {
        return;
    }
    let t = TestDir::new();
    t.write("a/etc/hardway-test/x", "x\n");
    let mut trace = None;
    let mut stray_child = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let dc = Datacenter::new(&[
            HostSpec::new("a", "10.240.0.10/24").bundle(t.join("a")),
            HostSpec::new("b", "10.240.0.11/24"),
        ]);
        let mut tr = Trace::of(&dc);
        let daemon = dc.spawn(dc.command("a", "sleep").arg("1000"));
        tr.pids.push(daemon.pid());
        // A stray: spawned without a guard, so only the datacenter's own sweep of its namespaces can stop it.
        let stray = dc.command("b", "sleep").arg("1000").spawn().expect("spawn");
        tr.pids.push(stray.id());
        assert!(!pid_dead(stray.id()) && daemon.running());
        stray_child = Some(stray);
        trace = Some(tr);
        panic!("deliberate panic with a live datacenter");
    }));
    let payload = result.expect_err("the closure panics");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("deliberate panic with a live datacenter")
    );
    trace.expect("trace").assert_gone();
    let status = stray_child.expect("stray").wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(9),
        "the stray was killed by the datacenter: {status}"
    );
}

#[test]
fn an_existing_name_fails_clearly_and_is_left_alone() {
    if !Datacenter::available() {
        return;
    }
    let id = fresh_id();
    let taken = format!("{id}-host-b");
    ok(Command::new("ip").args(["netns", "add", &taken]));
    let result = catch_unwind(|| {
        Datacenter::create(
            &[
                HostSpec::new("a", "10.240.0.10/24"),
                HostSpec::new("b", "10.240.0.11/24"),
            ],
            None,
            &id,
        )
    });
    let exists = Path::new("/run/netns").join(&taken).exists();
    ok(Command::new("ip").args(["netns", "del", &taken]));
    let payload = result.err().expect("creation must fail");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        msg.contains(&taken) && msg.contains("already exists"),
        "unclear failure: {msg:?}"
    );
    assert!(exists, "the harness removed a namespace it did not create");
    // What it had made before the failure is gone.
    let listed = ok(Command::new("ip").args(["netns", "list"]));
    assert!(!listed.contains(&format!("{id}-switch")), "{listed}");
    assert!(!Path::new(REGISTRY).join(&id).exists());
}

#[test]
fn leftovers_of_a_dead_run_are_removed_and_live_runs_kept() {
    if !Datacenter::available() {
        return;
    }
    let me = std::process::id();
    let start = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let start: u64 = start[start.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19)
        .expect("starttime")
        .parse()
        .expect("starttime");
    // Two fake runs, each with a registered namespace and a process inside it: one dead (this PID with another
    // start time, as after PID reuse), one alive (this process).
    let mut runs = Vec::new();
    for (dead, owner_start) in [(true, start + 1), (false, start)] {
        let id = fresh_id();
        let run = Path::new(REGISTRY).join(&id);
        let name = format!("{id}-switch");
        // Written under a dot name (which sweeps skip), then renamed into place complete.
        let tmp = Path::new(REGISTRY).join(format!(".{id}"));
        std::fs::create_dir_all(&tmp).expect("registry");
        std::fs::write(tmp.join("owner"), format!("{me} {owner_start}\n")).expect("owner");
        std::fs::write(tmp.join("names"), format!("netns {name}\n")).expect("names");
        ok(Command::new("ip").args(["netns", "add", &name]));
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{name}"))
            .args(["--", "sleep", "1000"])
            .spawn()
            .expect("spawn");
        // Registered only once the process is inside (nsenter enters after it starts).
        let inside = ns(Path::new("/run/netns").join(&name));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(format!("/proc/{}/ns/net", child.id()))
            .map(|m| (m.dev(), m.ino()))
            .ok()
            != Some(inside)
        {
            assert!(Instant::now() < deadline, "nsenter did not enter {name}");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::rename(&tmp, &run).expect("registry");
        runs.push((dead, id, run, name, child));
    }
    // (Another test's first datacenter may sweep at the same time: the dead run must be gone either way.)
    let cleaned = sweep_leftovers();
    for (dead, id, run, name, mut child) in runs {
        let ns_left = Path::new("/run/netns").join(&name).exists();
        if dead {
            assert!(!ns_left && !run.exists(), "dead run {id} left behind");
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    break status;
                }
                if Instant::now() > deadline {
                    child.kill().expect("kill");
                    child.wait().expect("wait");
                    panic!("the dead run's process survived the sweep");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!(status.signal(), Some(9), "its process was killed: {status}");
        } else {
            assert!(!cleaned.contains(&id), "live run {id} swept");
            assert!(ns_left && run.exists(), "live run {id} touched");
            assert!(
                child.try_wait().expect("try_wait").is_none(),
                "live run's process killed"
            );
            child.kill().expect("kill");
            child.wait().expect("wait");
            ok(Command::new("ip").args(["netns", "del", &name]));
            std::fs::remove_dir_all(&run).expect("remove registry");
        }
    }
}

#[test]
fn hosts_outside_one_subnet_or_clashing_are_rejected() {
    let cases: [(&[HostSpec], &str); 5] = [
        (
            &[
                HostSpec::new("a", "10.240.0.10/24"),
                HostSpec::new("b", "10.240.1.10/24"),
            ],
            "is not in 10.240.0.0/24",
        ),
        (
            &[
                HostSpec::new("a", "10.240.0.10/24"),
                HostSpec::new("b", "10.240.0.10/24"),
            ],
            "used twice",
        ),
        (
            &[
                HostSpec::new("a", "10.240.0.10/24"),
                HostSpec::new("a", "10.240.0.11/24"),
            ],
            "host a twice",
        ),
        (
            &[HostSpec::new(CONTROL, "10.240.0.10/24")],
            "control namespace",
        ),
        (&[HostSpec::new("a", "10.240.0.255/24")], "broadcast"),
    ];
    for (hosts, words) in cases {
        let err = catch_unwind(|| Datacenter::new(hosts))
            .err()
            .expect("rejected");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains(words),
            "{hosts:?}: {msg:?} should say {words:?}"
        );
    }
}
