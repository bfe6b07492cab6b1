//! etcd, the load balancer and the pinned-source download path, end to end in the simulated datacenter
//! (tests/util/datacenter.rs): a tarball in etcd's release layout made here from Debian's etcd, downloaded over
//! real HTTP inside the datacenter's control namespace, unpacked into every master's bundle, and run there with
//! exactly the ExecStart line of the generated etcd.service; the same tarball through `hardway add` and
//! `build --offline`; nginx with the load balancer's bundle in front of two TLS servers; and the download
//! failures `hardway fetch` must report without leaving anything in the store.
//!
//! Traffic only ever goes to the addresses of the namespaces a test creates: every download runs inside the
//! datacenter's control namespace (or in a network namespace with nothing but a loopback), with no proxy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::datacenter::{CONTROL, Datacenter, HostSpec};
use crate::util::etcd::*;
use crate::util::*;

/// recipes/seed.toml's hosts, with their addresses on a /24.
const HOSTS: [(&str, &str); 5] = [
    ("master1", "10.128.15.221"),
    ("master2", "10.128.15.222"),
    ("node1", "10.128.15.223"),
    ("node2", "10.128.15.224"),
    ("lb", "10.128.15.226"),
];

const MASTERS: [(&str, &str); 2] = [("master1", "10.128.15.221"), ("master2", "10.128.15.222")];

const LB_IP: &str = "10.128.15.226";

/// Where the generated unit is on a master.
const UNIT: &str = "/etc/systemd/system/etcd.service";

/// The port the test mirrors listen on (in a control namespace of the test's own).
const MIRROR_PORT: u16 = 8000;

/// The hardway binary run inside the datacenter's control namespace (its network only: it sees the real
/// filesystem, so absolute paths to the test's files work).
fn control_hardway(dc: &Datacenter) -> Command {
    let mut c = dc.command(CONTROL, env!("CARGO_BIN_EXE_hardway"));
    scrub(&mut c);
    c
}

/// The recipe's hosts, each with `out/<host>.tar.gz` when `out` is given.
fn recipe_hosts(out: Option<&Path>) -> Vec<HostSpec> {
    HOSTS
        .iter()
        .map(|(name, ip)| {
            let h = HostSpec::new(name, &format!("{ip}/24"));
            match out {
                Some(out) => h.bundle(out.join(format!("{name}.tar.gz"))),
                None => h,
            }
        })
        .collect()
}

/// A plain HTTP server (python3 -m http.server) in the control namespace serving `dir`; returns it and the
/// URL of `dir/<TARBALL>`.
fn mirror<'dc>(dc: &'dc Datacenter, dir: &Path) -> (crate::util::datacenter::Daemon<'dc>, String) {
    let ip = dc.ip(CONTROL).to_string();
    let server = dc.spawn(
        dc.command(CONTROL, "python3")
            .args([
                "-u",
                "-m",
                "http.server",
                &MIRROR_PORT.to_string(),
                "--bind",
                &ip,
                "--directory",
            ])
            .arg(dir),
    );
    server.wait_for_log(
        &format!("Serving HTTP on {ip} port {MIRROR_PORT}"),
        Duration::from_secs(20),
    );
    (server, format!("http://{ip}:{MIRROR_PORT}/{TARBALL}"))
}

/// The store's entries for the etcd tarball source (`<hash>-etcd-v3.3.5-linux-amd64.tar.gz`, and its `.drv`).
fn source_paths(store: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(&format!("-{TARBALL}")))
        .collect();
    v.sort();
    v
}

/// Asserts that `store` holds no source and that its `.tmp/` is empty (or that there is no store at all).
fn assert_nothing_fetched(store: &Path, what: &str) {
    let found = source_paths(store);
    assert!(found.is_empty(), "{what}: the store holds {found:?}");
    if let Ok(tmp) = std::fs::read_dir(store.join(".tmp")) {
        let left: Vec<_> = tmp.flatten().map(|e| e.file_name()).collect();
        assert!(
            left.is_empty(),
            "{what}: {}/.tmp holds {left:?}",
            store.display()
        );
    }
}

/// The store's built paths and derivation files: every entry that is not a dot file.
fn store_entries(store: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Builds `recipe` with a new seed of its own into `dir/{store,out}`, the tarball imported with `hardway add`
/// (no network: `--offline`). Returns `dir/out`.
fn build_with_another_seed(dir: &TestDir, recipe: &Path, tarball: &Path) -> PathBuf {
    let seed = dir.join("seed");
    let store = dir.join("store");
    let out = dir.join("out");
    ok(scrub(&mut hardway())
        .args(["init", "--seed-file"])
        .arg(&seed));
    ok(scrub(&mut hardway())
        .arg("add")
        .arg(tarball)
        .arg("--recipe")
        .arg(recipe)
        .arg("--store")
        .arg(&store));
    ok(scrub(&mut hardway())
        .arg("build")
        .arg(recipe)
        .arg("--offline")
        .arg("--store")
        .arg(&store)
        .arg("--out")
        .arg(&out)
        .arg("--seed-file")
        .arg(&seed));
    out
}

#[test]
fn etcd_cluster_from_the_bundles() {
    if !Datacenter::available()
        || !have_tool("python3")
        || !have_tool("etcd")
        || !have_tool("etcdctl")
        || !have_tool("systemd-analyze")
    {
        return;
    }
    let Some((tarball, sha)) = debian_etcd_tarball() else {
        return;
    };
    let start = Instant::now();
    let t = TestDir::new();
    let seed = t.test_seed();
    let store = t.join("store");
    let out = t.join("out");

    // 1. The real download path: `hardway build` in the control namespace fetches the tarball over HTTP from a
    // mirror in the same namespace. The hosts have no bundles yet: this datacenter is only the network.
    let recipe;
    {
        let net = Datacenter::new(&recipe_hosts(None));
        let (server, url) = mirror(&net, tarball.parent().expect("dir"));
        recipe = t.write("r.toml", &recipe_with(&url, &sha));
        let built = run(control_hardway(&net)
            .arg("build")
            .arg(&recipe)
            .arg("--store")
            .arg(&store)
            .arg("--out")
            .arg(&out)
            .arg("--seed-file")
            .arg(&seed));
        assert!(built.status.success(), "build: {}", both(&built));
        let log = server.log();
        assert!(
            log.contains(&format!("{} - - ", net.ip(CONTROL)))
                && log.contains(&format!("\"GET /{TARBALL} HTTP/1.1\" 200")),
            "the mirror did not serve the tarball to the control namespace:\n{log}"
        );
    }
    // The source is in the store under its pin, byte for byte the mirror's file.
    let sources = source_paths(&store);
    let dirs: Vec<&String> = sources.iter().filter(|n| !n.ends_with(".drv")).collect();
    assert_eq!(dirs.len(), 1, "{sources:?}");
    assert_eq!(
        sha256_hex(&std::fs::read(store.join(dirs[0]).join(TARBALL)).expect("stored tarball")),
        sha
    );
    let downloaded = start.elapsed();

    // A second cluster's files: the same recipe built with another seed (its certificates chain to another CA).
    let other = TestDir::new();
    let other_out = build_with_another_seed(&other, &recipe, &tarball);
    let built = start.elapsed();

    // 2. The cluster: every host with its bundle.
    let dc = Datacenter::new(&recipe_hosts(Some(&out)));
    let mut members = Vec::new();
    for (m, ip) in MASTERS {
        let unit = text(
            &dc.read(m, UNIT)
                .unwrap_or_else(|| panic!("{m} has no {UNIT}")),
        );
        assert_eq!(
            unit.as_bytes(),
            std::fs::read(out.join(format!("{m}-etcd-unit/etcd.service")))
                .expect("built unit")
                .as_slice(),
            "{m}'s {UNIT} is not the built unit"
        );
        let argv = exec_start(&unit);
        assert_eq!(argv[0], "/usr/local/bin/etcd", "{argv:?}");
        assert!(
            argv.windows(2).any(|w| w[0] == "--name" && w[1] == m)
                && argv.iter().any(|a| a == "--listen-peer-urls")
                && argv.contains(&format!("https://{ip}:2380")),
            "{m}'s unit: {argv:?}"
        );
        // The program is the bundle's binary, which is Debian's etcd out of the downloaded tarball.
        assert_eq!(
            dc.read(m, &argv[0]).map(|b| sha256_hex(&b)),
            Some(sha256_hex(&std::fs::read("/usr/bin/etcd").expect("etcd"))),
            "{m}'s {}",
            argv[0]
        );
        members.push((m, dc.spawn(dc.command(m, &argv[0]).args(&argv[1..]))));
    }

    // Both members healthy, each asked inside its own master on its loopback client URL.
    for (m, _) in MASTERS {
        wait_until(&format!("{m} healthy"), Duration::from_secs(30), || {
            for (name, d) in &members {
                if !d.running() {
                    panic!("etcd on {name} exited:\n{}", d.log());
                }
            }
            let o = run(etcdctl_on(&dc, m, "https://127.0.0.1:2379").args(["endpoint", "health"]));
            // etcdctl 3.4 reports health on stderr.
            if o.status.success() && both(&o).contains("https://127.0.0.1:2379 is healthy") {
                Ok(())
            } else {
                Err(both(&o))
            }
        });
    }
    let healthy = start.elapsed();

    // One cluster of two started members with the recipe's names and addresses.
    let list = ok(etcdctl_on(&dc, "master1", "https://127.0.0.1:2379").args(["member", "list"]));
    let mut names: Vec<&str> = list
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(", ").collect();
            assert!(f.len() == 6 && f[1] == "started", "member list line {l:?}");
            assert!(
                MASTERS
                    .iter()
                    .any(|(n, ip)| f[2] == *n && f[3] == format!("https://{ip}:2380")),
                "member list line {l:?}"
            );
            f[2]
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["master1", "master2"], "{list}");

    // A key written through master1 is read through master2's client URL, linearizably and from master2's own
    // copy (serializable).
    let value = format!("written-through-master1-{}", dc.id());
    assert_eq!(
        ok(etcdctl_on(&dc, "master1", "https://127.0.0.1:2379").args([
            "put",
            "hardway-test",
            &value
        ])),
        "OK\n"
    );
    let master2_url = "https://10.128.15.222:2379";
    assert_eq!(
        ok(etcdctl_on(&dc, "master2", master2_url).args([
            "get",
            "hardway-test",
            "--print-value-only"
        ])),
        format!("{value}\n")
    );
    wait_until("master2's own copy", Duration::from_secs(10), || {
        let o = run(etcdctl_on(&dc, "master2", master2_url).args([
            "get",
            "hardway-test",
            "--print-value-only",
            "--consistency=s",
        ]));
        if text(&o.stdout) == format!("{value}\n") {
            Ok(())
        } else {
            Err(both(&o))
        }
    });

    // From the control namespace (the machine's files, so the bundle's by their unpacked paths): the right
    // client certificate works, none or another seed's is refused by the server.
    let lower = dc.lower("master1").expect("master1's bundle").to_path_buf();
    let ca = lower.join("etc/etcd/ca.pem");
    let master1_url = "https://10.128.15.221:2379";
    assert_eq!(
        ok(etcdctl(
            &dc,
            CONTROL,
            master1_url,
            &ca,
            Some((
                &lower.join("etc/etcd/kubernetes.pem"),
                &lower.join("etc/etcd/kubernetes-key.pem")
            ))
        )
        .args(["get", "hardway-test", "--print-value-only"])),
        format!("{value}\n"),
        "the control namespace reaches master1 with the bundle's client certificate"
    );
    let master1_log = || members[0].1.log();
    let rejections = |log: &str| log.matches("rejected connection").count();
    let before = rejections(&master1_log());
    // (A refused client retries until its command timeout: 2 s is enough, the refusal comes at once.)
    let anonymous = run(etcdctl(&dc, CONTROL, master1_url, &ca, None).args([
        "get",
        "hardway-test",
        "--print-value-only",
        "--command-timeout=2s",
    ]));
    assert!(
        !anonymous.status.success() && !text(&anonymous.stdout).contains(&value),
        "a client without a certificate must be refused: {}",
        both(&anonymous)
    );
    wait_until("master1 logs the refusal", Duration::from_secs(5), || {
        let log = master1_log();
        if rejections(&log) > before {
            Ok(())
        } else {
            Err(log)
        }
    });
    let log = master1_log();
    assert!(
        log.contains(&format!("rejected connection from \"{}:", dc.ip(CONTROL)))
            && log.contains("didn't provide a certificate"),
        "master1's log does not say why it refused the client without a certificate:\n{log}"
    );
    let before = rejections(&log);
    let foreign = run(etcdctl(
        &dc,
        CONTROL,
        master1_url,
        &ca,
        Some((
            &other_out.join("kubernetes/kubernetes.pem"),
            &other_out.join("kubernetes/kubernetes-key.pem"),
        )),
    )
    .args([
        "get",
        "hardway-test",
        "--print-value-only",
        "--command-timeout=2s",
    ]));
    assert!(
        !foreign.status.success() && !text(&foreign.stdout).contains(&value),
        "a client certificate of another seed must be refused: {}",
        both(&foreign)
    );
    wait_until(
        "master1 logs the second refusal",
        Duration::from_secs(5),
        || {
            let log = master1_log();
            if rejections(&log) > before {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
    let log = master1_log();
    for (who, o) in [("no certificate", &anonymous), ("another seed's", &foreign)] {
        eprintln!(
            "etcdctl with {who}: {}: {}",
            o.status,
            text(&o.stderr).trim()
        );
    }
    for l in log.lines().filter(|l| l.contains("rejected connection")) {
        eprintln!("master1: {l}");
    }
    assert!(
        log.contains("unknown authority"),
        "master1's log does not say the other seed's certificate has an unknown authority:\n{log}"
    );

    // etcd wrote its data where the unit says, in the host's own layer, not on the machine.
    for (m, _) in MASTERS {
        assert!(
            dc.upper(m).join("var/lib/etcd/member/snap/db").is_file(),
            "{m}: no etcd database in its /var/lib/etcd"
        );
    }

    // systemd's own check of the unit, where /usr/local/bin/etcd exists (master1's view).
    let verify = run(dc
        .command("master1", "systemd-analyze")
        .args(["verify", UNIT]));
    let said = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    eprintln!(
        "systemd-analyze verify {UNIT} in master1 ({}):\n{said}",
        verify.status
    );
    let unrelated = |l: &str| {
        // A machine without systemd as PID 1 lacks the units every service is ordered against.
        (l.contains("Unit ") && l.contains(".target not found"))
            || l.contains("System has not been booted with systemd")
    };
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty() && !unrelated(l))
        .collect();
    assert!(
        complaints.iter().all(|l| !l.contains("etcd")),
        "systemd-analyze verify complains about the unit: {complaints:?}\n{said}"
    );
    assert!(
        verify.status.success() || said.lines().any(unrelated),
        "systemd-analyze verify failed without saying why: {said}"
    );

    for (_, d) in &members {
        assert!(d.running(), "an etcd member exited:\n{}", d.log());
    }
    drop(members);
    drop(dc);
    eprintln!(
        "timings: downloaded and built {downloaded:?}, other seed built {:?}, healthy {:?}, done {:?}",
        built - downloaded,
        healthy - built,
        start.elapsed()
    );
}

#[test]
fn same_tarball_through_hardway_add_offline() {
    // Root for a network namespace of the build's own (and the same tools as a datacenter).
    if !Datacenter::available() {
        return;
    }
    let Some((tarball, sha)) = debian_etcd_tarball() else {
        return;
    };
    let start = Instant::now();
    let t = TestDir::new();
    let seed = t.test_seed();
    let store = t.join("store");
    let out = t.join("out");
    // The mirror test 1 uses; here nothing listens there, and nothing could be reached anyway: every command
    // runs in a fresh network namespace whose only link is a loopback that is down.
    let url = format!("http://10.128.15.254:{MIRROR_PORT}/{TARBALL}");
    let text_ = recipe_with(&url, &sha);
    let recipe = t.write("r.toml", &text_);
    let disconnected = |sub: &str| {
        let mut c = Command::new("unshare");
        c.args(["--net", "--"])
            .arg(env!("CARGO_BIN_EXE_hardway"))
            .arg(sub);
        scrub(&mut c);
        c
    };
    let ip = ok(Command::new("unshare").args(["--net", "--", "ip", "-o", "link", "show"]));
    assert!(
        ip.lines().count() == 1 && ip.contains(": lo: ") && !ip.contains("UP"),
        "the fresh network namespace is not bare: {ip}"
    );
    let build = |c: &mut Command| -> Output {
        run(c
            .arg(&recipe)
            .arg("--offline")
            .arg("--store")
            .arg(&store)
            .arg("--out")
            .arg(&out)
            .arg("--seed-file")
            .arg(&seed))
    };

    // Offline without the tarball: refused before anything is built, naming the file and both remedies.
    let refused = build(&mut disconnected("build"));
    assert!(!refused.status.success(), "{}", both(&refused));
    let err = text(&refused.stderr);
    for words in [
        TARBALL,
        &format!("sha256:{sha}"),
        &format!(
            "{}:{}",
            recipe.display(),
            line_of(&text_, "\nsha256 = ") + 1
        ),
        &format!("hardway fetch {}", recipe.display()),
        &format!("hardway add FILE --recipe {}", recipe.display()),
    ] {
        assert!(err.contains(words), "the error must say {words:?}:\n{err}");
    }
    assert!(
        store_entries(&store).is_empty(),
        "a refused offline build left {:?} in the store",
        store_entries(&store)
    );
    assert_nothing_fetched(&store, "refused offline build");
    let links: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(links.is_empty(), "a refused offline build linked {links:?}");

    // A file that matches no pin is refused with its hash, and nothing enters the store.
    let stray = t.write(TARBALL, "not etcd's release\n");
    let stray_sha = sha256_hex(b"not etcd's release\n");
    let before = snapshot(&store);
    let o = run(disconnected("add")
        .arg(&stray)
        .arg("--recipe")
        .arg(&recipe)
        .arg("--store")
        .arg(&store));
    assert!(!o.status.success(), "{}", both(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("sha256:{stray_sha}"))
            && err.contains("matches no pin")
            && err.contains(&recipe.display().to_string()),
        "{err}"
    );
    assert_eq!(snapshot(&store), before, "a refused add changed the store");
    eprintln!(
        "offline build without the tarball:\n{}\nadd of a stray file:\n{err}",
        text(&refused.stderr)
    );

    // The real tarball is admitted by its hash, under the store path its pin names.
    let added = ok(disconnected("add")
        .arg(&tarball)
        .arg("--recipe")
        .arg(&recipe)
        .arg("--store")
        .arg(&store));
    let admitted: Vec<String> = source_paths(&store)
        .into_iter()
        .filter(|n| !n.ends_with(".drv"))
        .collect();
    assert_eq!(admitted.len(), 1, "{:?}", source_paths(&store));
    assert!(
        added.contains(&admitted[0]) && added.contains(&tarball.display().to_string()),
        "`add` does not say what it added: {added}"
    );

    // Now the offline build succeeds, still without any network.
    let built = build(&mut disconnected("build"));
    assert!(built.status.success(), "{}", both(&built));

    // The same recipe and seed through a file:// mirror, downloaded into another store: the same bytes, since
    // the source is keyed by its pin alone (the URL is not part of anything built).
    let reference = TestDir::new();
    let ref_recipe = reference.write(
        "file.toml",
        &recipe_with(&format!("file://{}", tarball.display()), &sha),
    );
    ok(scrub(&mut hardway())
        .arg("build")
        .arg(&ref_recipe)
        .arg("--store")
        .arg(reference.join("store"))
        .arg("--out")
        .arg(reference.join("out"))
        .arg("--seed-file")
        .arg(&seed));
    assert_eq!(
        source_paths(&reference.join("store")),
        source_paths(&store),
        "the source's store path depends on how it came in"
    );
    for (host, _) in HOSTS {
        let name = format!("{host}.tar.gz");
        let ours = std::fs::read(out.join(&name)).expect("bundle");
        let theirs = std::fs::read(reference.join("out").join(&name)).expect("bundle");
        assert!(
            ours == theirs,
            "{name} differs between `add` + `build --offline` and a file:// download"
        );
    }
    // And the masters' bundles really carry the tarball's binaries.
    let master1 = ok(Command::new("tar")
        .arg("-tzf")
        .arg(out.join("master1.tar.gz")));
    assert!(
        master1.lines().any(|l| l == "usr/local/bin/etcd"),
        "{master1}"
    );
    eprintln!("timings: {:?}", start.elapsed());
}

/// `openssl s_server` on a master's API server address with the master's own files: the API server certificate,
/// demanding a client certificate from the CA (`-Verify 1` logs a bad one as `verify error` but goes on, so its
/// log is the verdict). `-www` answers every request with a page describing the session.
fn api_server<'dc>(
    dc: &'dc Datacenter,
    master: &str,
    ip: &str,
) -> crate::util::datacenter::Daemon<'dc> {
    let d = dc.spawn(dc.command(master, "openssl").args([
        "s_server",
        "-accept",
        &format!("{ip}:6443"),
        "-cert",
        "/var/lib/kubernetes/kubernetes.pem",
        "-key",
        "/var/lib/kubernetes/kubernetes-key.pem",
        "-CAfile",
        "/var/lib/kubernetes/ca.pem",
        "-Verify",
        "1",
        "-www",
    ]));
    d.wait_for_log("ACCEPT", Duration::from_secs(20));
    d
}

/// True when a socket of `host`'s network namespace listens on `ip:port` (its /proc/net/tcp, read inside it).
fn listens(dc: &Datacenter, host: &str, ip: &str, port: u16) -> bool {
    let ip: std::net::Ipv4Addr = ip.parse().expect("address");
    // The kernel prints the address as one host-order integer, the port as a number.
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes(ip.octets()));
    dc.read(host, "/proc/net/tcp").is_some_and(|t| {
        text(&t).lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == local && f[3] == "0A"
        })
    })
}

/// How often a server's log shows the TLS client `node1` verified (s_server's verify callback prints the
/// subject of each certificate of the client's chain).
fn node1_handshakes(log: &str) -> usize {
    log.matches("CN = system:node:node1").count()
}

#[test]
fn load_balancer_in_the_datacenter() {
    if !Datacenter::available() || !have_tool("nginx") || !have_tool("openssl") || !have_kubectl() {
        return;
    }
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !module.exists() {
        unavailable(
            &format!("nginx's stream module ({})", module.display()),
            "Debian package libnginx-mod-stream",
        );
        return;
    }
    let start = Instant::now();
    // The seed recipe with its stand-in etcd tarball through file:// (nothing is downloaded here).
    let (stand_in, stand_in_sha) = test_etcd_tarball();
    let b = Built::new(&recipe_with(
        &format!("file://{}", stand_in.display()),
        &stand_in_sha,
    ));
    let out = b.t.join("out");
    // Another seed's cluster: its node1 is a stranger to this one.
    let other = TestDir::new();
    let other_out = build_with_another_seed(&other, &b.recipe, &stand_in);

    let dc = Datacenter::new(&recipe_hosts(Some(&out)));
    // What nginx loads on lb: Debian's nginx.conf, Debian's stream module, and the bundle's two files.
    let dump = run(dc.command("lb", "nginx").arg("-T"));
    let conf = text(&dump.stdout);
    assert!(dump.status.success(), "nginx -T: {}", both(&dump));
    for line in [
        "# configuration file /etc/nginx/nginx.conf:",
        "# configuration file /etc/nginx/modules-enabled/50-mod-stream.conf:",
        "# configuration file /etc/nginx/modules-enabled/zz-hardway-tcpconf.conf:",
        "# configuration file /etc/nginx/tcpconf.d/kubernetes.conf:",
        "        server 10.128.15.221:6443;",
        "        server 10.128.15.222:6443;",
        "        listen 10.128.15.226:6443;",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "nginx -T has no {line:?}:\n{conf}"
        );
    }

    let mut servers: Vec<_> = MASTERS
        .iter()
        .map(|(m, ip)| Some(api_server(&dc, m, ip)))
        .collect();
    let nginx = dc.spawn(dc.command("lb", "nginx").args(["-g", "daemon off;"]));
    wait_until("nginx listening on lb", Duration::from_secs(20), || {
        assert!(nginx.running(), "nginx exited:\n{}", nginx.log());
        if listens(&dc, "lb", LB_IP, 6443) && listens(&dc, "lb", LB_IP, 443) {
            Ok(())
        } else {
            Err(nginx.log())
        }
    });
    // What nginx logged: its stderr, and what it wrote to lb's error log (the machine's file is the overlay's
    // lower layer: its old lines are not this nginx's).
    let machine_log = std::fs::read("/var/log/nginx/error.log").unwrap_or_default();
    let nginx_errors = || {
        let lb_log = std::fs::read(dc.upper("lb").join("var/log/nginx/error.log"))
            .expect("nginx opened no error log in lb's /var/log/nginx");
        let own = lb_log
            .strip_prefix(machine_log.as_slice())
            .unwrap_or(&lb_log);
        format!("{}{}", nginx.log(), text(own))
    };
    assert!(!nginx_errors().contains("[emerg]"), "{}", nginx_errors());

    // node1's kubelet kubeconfig, at its bundle path in node1, through the load balancer to an API server.
    let kubectl_in = |host: &str, kubeconfig: &Path| {
        run(dc
            .command(host, kubectl_program())
            // kubectl's cache goes to $HOME/.kube: the host's own /var, not the machine's /root.
            .env("HOME", "/var/tmp")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "--raw", "/", "--request-timeout=10s"]))
    };
    let kubelet = Path::new("/var/lib/kubelet/kubeconfig");
    let logs = |servers: &[Option<crate::util::datacenter::Daemon>]| -> Vec<String> {
        servers
            .iter()
            .map(|s| s.as_ref().map(|d| d.log()).unwrap_or_default())
            .collect()
    };
    let reply = kubectl_in("node1", kubelet);
    assert!(
        reply.status.success(),
        "kubectl through lb: {}",
        both(&reply)
    );
    let page = text(&reply.stdout);
    assert!(
        page.contains("Client certificate") && page.contains("CN=system:node:node1"),
        "the API server did not see node1's certificate:\n{page}"
    );
    wait_until("a server logs node1", Duration::from_secs(5), || {
        let l = logs(&servers);
        if l.iter().map(|l| node1_handshakes(l)).sum::<usize>() >= 1 {
            Ok(())
        } else {
            Err(l.join("\n---\n"))
        }
    });
    for (log, (m, _)) in logs(&servers).iter().zip(MASTERS) {
        assert!(!log.contains("verify error"), "{m}'s server:\n{log}");
    }

    // master1's API server goes away: nginx sends every connection to master2.
    let stopped = servers[0].take().expect("master1's server");
    let master1_log = stopped.log();
    stopped.stop();
    // (kubectl may open more than one connection per call: each call must reach master2 at least once.)
    for round in 1..=3 {
        let seen = node1_handshakes(&logs(&servers)[1]);
        let reply = kubectl_in("node1", kubelet);
        assert!(
            reply.status.success(),
            "kubectl with master1 down, round {round}: {}",
            both(&reply)
        );
        assert!(text(&reply.stdout).contains("CN=system:node:node1"));
        wait_until(
            &format!("master2 answered round {round}"),
            Duration::from_secs(5),
            || {
                let log = &logs(&servers)[1];
                if node1_handshakes(log) > seen {
                    Ok(())
                } else {
                    Err(log.clone())
                }
            },
        );
    }
    assert!(
        !logs(&servers)[1].contains("verify error") && !master1_log.contains("verify error"),
        "{}\n---\n{master1_log}",
        logs(&servers)[1]
    );

    // The controls, which show the checks above can fail: another seed's kubeconfig does not trust this
    // cluster's server, and a certificate of another seed makes the server log `verify error`.
    let stranger = kubectl_in("node1", &other_out.join("node1.kubeconfig"));
    assert!(
        !stranger.status.success() && text(&stranger.stderr).contains("x509"),
        "another seed's kubeconfig must not trust this cluster: {}",
        both(&stranger)
    );
    let probe = run(dc
        .command("node1", "openssl")
        .args(["s_client", "-connect", &format!("{LB_IP}:6443"), "-brief"])
        .args([
            "-CAfile",
            "/var/lib/kubernetes/ca.pem",
            "-verify_return_error",
        ])
        .arg("-cert")
        .arg(other_out.join("node1/node1.pem"))
        .arg("-key")
        .arg(other_out.join("node1/node1-key.pem"))
        .stdin(std::process::Stdio::null()));
    wait_until("master2 logs the stranger", Duration::from_secs(5), || {
        let log = &logs(&servers)[1];
        if log.contains("verify error") {
            Ok(())
        } else {
            Err(format!("{log}\ns_client: {}", both(&probe)))
        }
    });

    assert!(nginx.running(), "nginx exited:\n{}", nginx.log());
    assert!(!nginx_errors().contains("[emerg]"), "{}", nginx_errors());
    drop(servers);
    drop(nginx);
    drop(dc);
    eprintln!("timings: {:?}", start.elapsed());
}

/// A mirror that misbehaves by path (argv: address, port, file): `/good/…` serves the file, `/cut/…` announces
/// 100000 bytes more than it sends and closes, `/silent/…` reads the request and never answers, anything else
/// is a 404. Every request is logged on stderr (a silent one when it arrives).
const FLAKY_MIRROR: &str = r#"
import socket, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = open(path, 'rb').read()
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        kind = self.path.split('/')[1]
        if kind == 'good':
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == 'cut':
            self.send_response(200)
            self.send_header('Content-Length', str(len(body) + 100000))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif kind == 'silent':
            sys.stderr.write(f'silent: {self.path}\n')
            sys.stderr.flush()
            time.sleep(3600)
        else:
            self.send_error(404)
ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer((host, port), Handler)
print(f'listening on {host}:{port}', flush=True)
server.serve_forever()
"#;

/// A datacenter whose control namespace runs [`FLAKY_MIRROR`] with the stand-in tarball (at `/good/…`).
fn flaky_mirror() -> (Datacenter, PathBuf, String) {
    let (stand_in, sha) = test_etcd_tarball();
    let dc = Datacenter::new(&[HostSpec::new("master1", "10.128.15.221/24")]);
    (dc, stand_in, sha)
}

/// `hardway fetch` (in the control namespace) of the seed recipe with `url` and `sha256` pinned, into a store
/// of its own. Returns the recipe, its text, the store and the output.
fn fetch(
    dc: &Datacenter,
    t: &TestDir,
    name: &str,
    url: &str,
    sha256: &str,
) -> (PathBuf, String, PathBuf, Output) {
    let text_ = recipe_with(url, sha256);
    let recipe = t.write(&format!("{name}.toml"), &text_);
    let store = t.join(&format!("{name}-store"));
    let mut cmd = control_hardway(dc);
    // A mirror that never answers: bound each wait (connect, headers, body) to 2 s instead of 60 s.
    cmd.env("HARDWAY_FETCH_TIMEOUT", "2");
    let o = run(cmd
        .arg("fetch")
        .arg(&recipe)
        .arg("--store")
        .arg(&store)
        .arg("--quiet"));
    (recipe, text_, store, o)
}

#[test]
fn download_failures_leave_nothing_in_the_store() {
    if !Datacenter::available() || !have_tool("python3") {
        return;
    }
    let start = Instant::now();
    let t = TestDir::new();
    let (dc, stand_in, sha) = flaky_mirror();
    let ip = dc.ip(CONTROL).to_string();
    let server = dc.spawn(
        dc.command(CONTROL, "python3")
            .args(["-u", "-c", FLAKY_MIRROR, &ip, &MIRROR_PORT.to_string()])
            .arg(&stand_in),
    );
    server.wait_for_log(
        &format!("listening on {ip}:{MIRROR_PORT}"),
        Duration::from_secs(20),
    );
    let url = |kind: &str| format!("http://{ip}:{MIRROR_PORT}/{kind}/{TARBALL}");
    let wrong_pin = sha256_hex(b"some other file");
    let served = sha256_hex(&std::fs::read(&stand_in).expect("stand-in"));
    assert_eq!(served, sha);

    let refused_url = format!("http://{ip}:{}/{TARBALL}", MIRROR_PORT + 1);
    let cases: [(&str, String, &str, Vec<String>); 4] = [
        (
            "wrong-hash",
            url("good"),
            &wrong_pin,
            vec![
                "hash mismatch".to_string(),
                format!("specified: sha256:{wrong_pin}"),
                format!("got:       sha256:{served}"),
            ],
        ),
        (
            "not-found",
            url("missing"),
            &sha,
            vec!["HTTP 404".to_string()],
        ),
        (
            "cut-short",
            url("cut"),
            &sha,
            vec![
                "cut short".to_string(),
                format!(
                    "of {} bytes",
                    stand_in.metadata().expect("size").len() + 100_000
                ),
            ],
        ),
        (
            "refused",
            refused_url,
            &sha,
            vec!["cannot connect".to_string()],
        ),
    ];
    for (name, url, pin, words) in cases {
        let began = Instant::now();
        let (recipe, text_, store, o) = fetch(&dc, &t, name, &url, pin);
        assert!(!o.status.success(), "{name}: fetch succeeded: {}", both(&o));
        assert_eq!(o.status.code(), Some(1), "{name}: {}", both(&o));
        let err = text(&o.stderr);
        let origin = format!(
            "{}:{}",
            recipe.display(),
            line_of(&text_, "\nsha256 = ") + 1
        );
        for w in words.iter().chain([&url, &origin]) {
            assert!(
                err.contains(w.as_str()),
                "{name}: the error must say {w:?}:\n{err}"
            );
        }
        assert_nothing_fetched(&store, name);
        eprintln!("{name}: {:?}: {}", began.elapsed(), err.trim());
    }
    // The mirror was asked for each (the failures are the server's doing, not the network's).
    let log = server.log();
    for path in ["/good/", "/missing/", "/cut/"] {
        assert!(
            log.contains(&format!("\"GET {path}{TARBALL} HTTP/1.1\"")),
            "{path}: {log}"
        );
    }

    // The control: the same mirror's good file with its right pin is fetched and stored.
    let (_, _, store, o) = fetch(&dc, &t, "good", &url("good"), &sha);
    assert!(o.status.success(), "{}", both(&o));
    let stored: Vec<String> = source_paths(&store)
        .into_iter()
        .filter(|n| !n.ends_with(".drv"))
        .collect();
    assert_eq!(stored.len(), 1, "{:?}", source_paths(&store));
    assert_eq!(
        std::fs::read(store.join(&stored[0]).join(TARBALL)).expect("stored"),
        std::fs::read(&stand_in).expect("stand-in")
    );
    let tmp: Vec<_> = std::fs::read_dir(store.join(".tmp"))
        .expect(".tmp")
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    drop(server);
    drop(dc);
    eprintln!("timings: {:?}", start.elapsed());
}

#[test]
fn download_from_a_mirror_that_never_answers_times_out() {
    if !Datacenter::available() || !have_tool("python3") {
        return;
    }
    let t = TestDir::new();
    let (dc, stand_in, sha) = flaky_mirror();
    let ip = dc.ip(CONTROL).to_string();
    let server = dc.spawn(
        dc.command(CONTROL, "python3")
            .args(["-u", "-c", FLAKY_MIRROR, &ip, &MIRROR_PORT.to_string()])
            .arg(&stand_in),
    );
    server.wait_for_log(
        &format!("listening on {ip}:{MIRROR_PORT}"),
        Duration::from_secs(20),
    );
    let url = format!("http://{ip}:{MIRROR_PORT}/silent/{TARBALL}");
    let began = Instant::now();
    let (recipe, text_, store, o) = fetch(&dc, &t, "silent", &url, &sha);
    let took = began.elapsed();
    assert!(!o.status.success(), "{}", both(&o));
    let err = text(&o.stderr);
    let origin = format!(
        "{}:{}",
        recipe.display(),
        line_of(&text_, "\nsha256 = ") + 1
    );
    for w in [url.as_str(), "timed out", &origin] {
        assert!(err.contains(w), "the error must say {w:?}:\n{err}");
    }
    assert_nothing_fetched(&store, "silent");
    assert!(
        server.log().contains(&format!("silent: /silent/{TARBALL}")),
        "the mirror was not asked: {}",
        server.log()
    );
    // Three attempts of a 2 s wait, plus backoff: well under the 60 s default.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    eprintln!("silent: {took:?}: {}", err.trim());
}
