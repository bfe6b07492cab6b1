//! Kubeconfigs with kubectl, per-host bundles with GNU tar, least privilege, incremental rebuilds, mutual TLS.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

const HOSTS: [&str; 5] = ["master1", "master2", "node1", "node2", "lb"];

/// The kubectl minor versions (of major version 1) whose `kubectl config view --raw` layout the byte-for-byte test
/// knows. One layout: fields in kubectl's order, `preferences: {}`, two-space block YAML, base64 data on one line.
/// Measured at both ends: Debian 12's kubernetes-client (v1.20.2) and v1.32.4 print every kubeconfig of the seed
/// recipe back byte for byte. A kubectl outside the range fails the test until someone checks it and extends this.
/// (That 1.20.2 only reads kubeconfigs: its `kubectl config set-credentials` crashes, a nil-pointer panic in
/// reflect2's map iterator, an old library built with a newer Go; so it cannot write one the tutorial's way.)
const VIEW_RAW_LAYOUT_KNOWN_FOR: std::ops::RangeInclusive<u32> = 20..=32;

/// Fails unless the kubectl under test (printed by `kubectl_version`) is one whose kubeconfig layout is known.
fn assert_known_kubeconfig_layout() -> &'static KubectlVersion {
    let v = kubectl_version();
    assert!(
        v.major == 1 && VIEW_RAW_LAYOUT_KNOWN_FOR.contains(&v.minor),
        "kubectl {} ({}): its kubeconfig layout is not known to this test (known: 1.{}–1.{}); check that \
         `kubectl config view --raw` gives out/*.kubeconfig back byte for byte and extend VIEW_RAW_LAYOUT_KNOWN_FOR",
        v.git_version,
        kubectl_program(),
        VIEW_RAW_LAYOUT_KNOWN_FOR.start(),
        VIEW_RAW_LAYOUT_KNOWN_FOR.end()
    );
    v
}

#[test]
fn kubectl_version_is_read_from_json_and_from_both_text_forms() {
    let json = "{\n  \"clientVersion\": {\n    \"major\": \"1\",\n    \"minor\": \"32+\",\n    \"gitVersion\": \"v1.32.4-dispatcher\",\n    \"gitCommit\": \"4cb5f07\"\n  },\n  \"kustomizeVersion\": \"v5.5.0\"\n}\n";
    let v = KubectlVersion::from_json(json).expect("json");
    assert_eq!(
        (v.git_version.as_str(), v.major, v.minor, v.patch),
        ("v1.32.4-dispatcher", 1, 32, 4)
    );
    let old = "Client Version: version.Info{Major:\"1\", Minor:\"20\", GitVersion:\"v1.20.2\", GitCommit:\"faecb19\", GitTreeState:\"archive\"}\n";
    let v = KubectlVersion::from_text(old).expect("old text");
    assert_eq!(
        (v.git_version.as_str(), v.minor, v.patch),
        ("v1.20.2", 20, 2)
    );
    let new = "Client Version: v1.32.4\nKustomize Version: v5.5.0\n";
    assert_eq!(
        KubectlVersion::from_text(new).map(|v| (v.minor, v.patch)),
        Some((32, 4))
    );
    assert_eq!(
        KubectlVersion::from_text("Kustomize Version: v5.5.0\n"),
        None
    );
    assert_eq!(KubectlVersion::parse("1.20.2"), None);
}

#[test]
fn kubectl_reads_every_kubeconfig_back_byte_for_byte() {
    if !have_kubectl() {
        return;
    }
    let version = assert_known_kubeconfig_layout();
    let b = Built::seed_recipe();
    let users = [
        ("node1", "system:node:node1"),
        ("node2", "system:node:node2"),
        ("kube-proxy", "system:kube-proxy"),
        ("kube-controller-manager", "system:kube-controller-manager"),
        ("kube-scheduler", "system:kube-scheduler"),
        ("admin", "admin"),
        ("admin-remote", "admin"),
    ];
    for (name, user) in users {
        let f = b.out(&format!("{name}.kubeconfig"));
        let original = std::fs::read_to_string(&f).expect("read");
        let view = ok(kubectl()
            .args(["config", "view", "--raw", "--kubeconfig"])
            .arg(&f));
        assert_eq!(
            view, original,
            "{name}.kubeconfig is not in the form kubectl {} writes",
            version.git_version
        );
        let contexts = ok(kubectl()
            .args(["config", "get-contexts", "--kubeconfig"])
            .arg(&f));
        let row: Vec<&str> = contexts
            .lines()
            .nth(1)
            .expect("a context")
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            ["*", "default", "mycluster", user],
            "{name}: {contexts}"
        );
    }
    let lb = "https://10.128.15.226:6443";
    let local = "https://127.0.0.1:6443";
    for (name, server) in [
        ("node1", lb),
        ("kube-proxy", lb),
        ("admin-remote", lb),
        ("admin", local),
        ("kube-scheduler", local),
    ] {
        let text = std::fs::read_to_string(b.out(&format!("{name}.kubeconfig"))).expect("read");
        assert!(
            text.contains(&format!("    server: {server}\n")),
            "{name}: {text}"
        );
    }
}

#[test]
fn server_overrides_come_from_the_recipe() {
    let text =
        seed_text() + "\n[kubeconfigs.servers]\nkube-proxy = \"https://10.128.15.222:6443\"\n";
    let b = Built::new(&text);
    let kp = std::fs::read_to_string(b.out("kube-proxy.kubeconfig")).expect("read");
    assert!(kp.contains("server: https://10.128.15.222:6443"), "{kp}");
    let n1 = std::fs::read_to_string(b.out("node1.kubeconfig")).expect("read");
    assert!(n1.contains("server: https://10.128.15.226:6443"), "{n1}");
}

/// `tar -tzv --numeric-owner` of a bundle: (mode string, owner, path).
fn tar_listing(bundle: &Path) -> Vec<(String, String, String)> {
    ok(Command::new("tar")
        .args(["-tzv", "--numeric-owner", "-f"])
        .arg(bundle))
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (
            f[0].to_string(),
            f[1].to_string(),
            f[f.len() - 1].to_string(),
        )
    })
    .collect()
}

fn expected_files(host: &str) -> Vec<(&'static str, String)> {
    let k = "var/lib/kubernetes";
    match host {
        "master1" | "master2" => vec![
            ("-rw-r--r--", format!("{k}/ca.pem")),
            ("-rw-------", format!("{k}/ca-key.pem")),
            ("-rw-r--r--", format!("{k}/kubernetes.pem")),
            ("-rw-------", format!("{k}/kubernetes-key.pem")),
            ("-rw-r--r--", format!("{k}/service-account.pem")),
            ("-rw-------", format!("{k}/service-account-key.pem")),
            ("-rw-------", format!("{k}/encryption-config.yaml")),
            (
                "-rw-------",
                format!("{k}/kube-controller-manager.kubeconfig"),
            ),
            ("-rw-------", format!("{k}/kube-scheduler.kubeconfig")),
            ("-rw-------", "etc/kubernetes/admin.kubeconfig".into()),
            ("-rw-r--r--", "etc/etcd/ca.pem".into()),
            ("-rw-r--r--", "etc/etcd/kubernetes.pem".into()),
            ("-rw-------", "etc/etcd/kubernetes-key.pem".into()),
            // etcd from the recipe's [etcd] release (the tests' stand-in tarball has no etcdutl: v3.3).
            ("-rwxr-xr-x", "usr/local/bin/etcd".into()),
            ("-rwxr-xr-x", "usr/local/bin/etcdctl".into()),
            ("-rw-r--r--", "etc/systemd/system/etcd.service".into()),
        ],
        "lb" => vec![
            ("-rw-r--r--", "etc/nginx/tcpconf.d/kubernetes.conf".into()),
            (
                "-rw-r--r--",
                "etc/nginx/modules-enabled/zz-hardway-tcpconf.conf".into(),
            ),
        ],
        node => vec![
            ("-rw-r--r--", format!("{k}/ca.pem")),
            ("-rw-r--r--", format!("var/lib/kubelet/{node}.pem")),
            ("-rw-------", format!("var/lib/kubelet/{node}-key.pem")),
            ("-rw-------", "var/lib/kubelet/kubeconfig".into()),
            ("-rw-------", "var/lib/kube-proxy/kubeconfig".into()),
        ],
    }
}

#[test]
fn bundles_hold_exactly_each_hosts_files_with_modes_and_root_owner() {
    if !have_tool("tar") {
        return;
    }
    let b = Built::seed_recipe();
    for host in HOSTS {
        let listing = tar_listing(&b.out(&format!("{host}.tar.gz")));
        let paths: Vec<&str> = listing.iter().map(|(_, _, p)| p.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "{host}: entries must be sorted");
        for (mode, owner, path) in &listing {
            assert_eq!(owner, "0/0", "{host}: {path}");
            if path.ends_with('/') {
                let want = if path == "var/lib/etcd/" {
                    "drwx------"
                } else {
                    "drwxr-xr-x"
                };
                assert_eq!(mode, want, "{host}: {path}");
                continue;
            }
        }
        let files: BTreeSet<(String, String)> = listing
            .iter()
            .filter(|(_, _, p)| !p.ends_with('/'))
            .map(|(m, _, p)| (m.clone(), p.clone()))
            .collect();
        let want: BTreeSet<(String, String)> = expected_files(host)
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
        assert_eq!(files, want, "{host}");
        // Every parent directory is an entry of its own.
        for (_, _, p) in &listing {
            let mut parent = Path::new(p.trim_end_matches('/')).parent();
            while let Some(d) = parent.filter(|d| !d.as_os_str().is_empty()) {
                let dir = format!("{}/", d.display());
                assert!(
                    paths.contains(&dir.as_str()),
                    "{host}: parent {dir} of {p} missing"
                );
                parent = d.parent();
            }
        }
    }
}

#[test]
fn gnu_tar_extracts_each_bundle_with_its_modes_and_bytes() {
    if !have_tool("tar") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let b = Built::seed_recipe();
    for host in HOSTS {
        let root = b.t.join(&format!("root-{host}"));
        std::fs::create_dir_all(&root).expect("mkdir");
        ok(Command::new("tar")
            .args(["-xzpf"])
            .arg(b.out(&format!("{host}.tar.gz")))
            .arg("-C")
            .arg(&root)
            .args(["--same-owner", "--numeric-owner"]));
        let manifest =
            std::fs::read_to_string(b.out(&format!("{host}.manifest"))).expect("manifest");
        let mut files = 0;
        for line in manifest
            .lines()
            .filter(|l| l.starts_with("f ") || l.starts_with("d "))
        {
            let f: Vec<&str> = line.split(' ').collect();
            let path = root.join(f.last().expect("path").trim_start_matches('/'));
            let meta = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{host}: {}: {e}", path.display()));
            assert_eq!(
                format!("{:04o}", meta.permissions().mode() & 0o7777),
                f[1],
                "{host}: {}",
                path.display()
            );
            if f[0] == "f" {
                files += 1;
                let bytes = std::fs::read(&path).expect("read");
                let sha = ok(Command::new("sha256sum").arg(&path));
                assert_eq!(&sha[..64], f[2], "{host}: {}", path.display());
                assert_eq!(bytes.len().to_string(), f[3]);
            }
        }
        assert_eq!(files, expected_files(host).len(), "{host}");
        // The manifest's bundle hash is the file's.
        let sha = ok(Command::new("sha256sum").arg(b.out(&format!("{host}.tar.gz"))));
        assert!(
            manifest.contains(&format!("bundle-sha256 {}", &sha[..64])),
            "{host}"
        );
    }
}

#[test]
fn least_privilege_over_every_host_and_secret() {
    if !have_tool("tar") {
        return;
    }
    let b = Built::seed_recipe();
    // Each secret file the build made (by content) and the hosts that may hold it.
    let read = |p: std::path::PathBuf| {
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let masters = ["master1", "master2"];
    let mut secrets: Vec<(String, Vec<u8>, Vec<&str>)> = vec![
        (
            "ca key".into(),
            read(b.out("ca").join("ca-key.pem")),
            masters.to_vec(),
        ),
        (
            "kubernetes key".into(),
            read(b.out("kubernetes").join("kubernetes-key.pem")),
            masters.to_vec(),
        ),
        (
            "service-account key".into(),
            read(b.out("service-account").join("service-account-key.pem")),
            masters.to_vec(),
        ),
        (
            "encryption config".into(),
            read(b.out("encryption-config").join("encryption-config.yaml")),
            masters.to_vec(),
        ),
        (
            "admin kubeconfig".into(),
            read(b.out("admin.kubeconfig")),
            masters.to_vec(),
        ),
        (
            "controller-manager kubeconfig".into(),
            read(b.out("kube-controller-manager.kubeconfig")),
            masters.to_vec(),
        ),
        (
            "scheduler kubeconfig".into(),
            read(b.out("kube-scheduler.kubeconfig")),
            masters.to_vec(),
        ),
        (
            "kube-proxy kubeconfig".into(),
            read(b.out("kube-proxy.kubeconfig")),
            vec!["node1", "node2"],
        ),
        (
            "operator kubeconfig".into(),
            read(b.out("admin-remote.kubeconfig")),
            vec![],
        ),
        (
            "admin key".into(),
            read(b.out("admin").join("admin-key.pem")),
            vec![],
        ),
        (
            "kube-proxy key".into(),
            read(b.out("kube-proxy").join("kube-proxy-key.pem")),
            vec![],
        ),
    ];
    for n in ["node1", "node2"] {
        secrets.push((
            format!("{n} key"),
            read(b.out(n).join(format!("{n}-key.pem"))),
            vec![n],
        ));
        secrets.push((
            format!("{n} kubeconfig"),
            read(b.out(&format!("{n}.kubeconfig"))),
            vec![n],
        ));
    }
    let mut matrix = BTreeMap::new();
    for host in HOSTS {
        let root = b.t.join(&format!("x-{host}"));
        std::fs::create_dir_all(&root).expect("mkdir");
        ok(Command::new("tar")
            .arg("-xzf")
            .arg(b.out(&format!("{host}.tar.gz")))
            .arg("-C")
            .arg(&root));
        let contents: Vec<Vec<u8>> = snapshot(&root).into_values().map(|(_, c)| c).collect();
        for (what, bytes, allowed) in &secrets {
            let holds = contents.iter().any(|c| c == bytes);
            matrix.insert((host, what.clone()), holds);
            assert_eq!(
                holds,
                allowed.contains(&host),
                "{host} {} {what}",
                if holds { "holds" } else { "lacks" }
            );
        }
        if host == "lb" {
            assert!(
                snapshot(&root)
                    .values()
                    .all(|(mode, _)| mode & 0o077 != 0 || *mode == 0o700),
                "lb holds a private file"
            );
        }
    }
    assert_eq!(matrix.len(), HOSTS.len() * secrets.len());
    // The encryption config is the same file on both masters (checked above by content).
}

#[test]
fn adding_one_worker_rebuilds_only_that_workers_derivations() {
    let text = seed_text();
    let b = Built::new(&text);
    let bigger =
        text + "\n[[hosts]]\nname = \"node3\"\nip = \"10.128.15.225\"\nrole = \"worker\"\n";
    std::fs::write(&b.recipe, bigger).expect("write");
    let out = ok(b.hardway("build").arg("--json"));
    let (built, _) = build_counts(&out);
    // node3's key, certificate, kubeconfig, overlay and bundle: nothing else.
    assert_eq!(built, 5, "{out}");
    let shown = ok(&mut b.hardway("show"));
    let fresh: Vec<&str> = shown.lines().filter(|l| l.contains("node3")).collect();
    assert_eq!(fresh.len(), 5, "{shown}");
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_server_guard_stops_its_whole_process_group_even_when_the_test_panics() {
    if !have_tool("sh") {
        return;
    }
    let started = std::sync::Mutex::new(Vec::new());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // A shell and two children that all ignore SIGTERM (an ignored signal stays ignored across exec): only
        // the guard's SIGKILL to the group ends them.
        let d = Daemon::spawn(
            "sh",
            Command::new("sh").args(["-c", "trap '' TERM; sleep 300 & sleep 300 & wait"]),
        )
        .stop_timeout(std::time::Duration::from_millis(300));
        *started.lock().expect("lock") = d.wait_processes(3);
        panic!("an assertion fails while the server runs");
    }));
    assert!(
        panic_text(&*caught.expect_err("the closure panics")).contains("an assertion fails"),
        "the test's own panic"
    );
    let started = started.into_inner().expect("lock");
    assert_eq!(started.len(), 3, "{started:?}");
    let left: Vec<u32> = started.into_iter().filter(|&p| is_live(p)).collect();
    assert!(left.is_empty(), "outlived the guard: {left:?}");
}

#[test]
fn a_server_that_cannot_bind_fails_even_when_another_process_answers_on_its_address() {
    if !have_tool("python3") {
        return;
    }
    // Another process's listener (here the test's own): it accepts connections, so merely connecting would
    // take it for the server.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = squatter.local_addr().expect("addr");
    assert!(std::net::TcpStream::connect(addr).is_ok());
    let caught = std::panic::catch_unwind(|| {
        let d = Daemon::spawn(
            "python3 server",
            Command::new("python3")
                .args([
                    "-c",
                    "import socket, sys, time\ns = socket.socket()\ns.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\ntime.sleep(300)",
                ])
                .arg(addr.port().to_string())
                .stderr(Stdio::null()),
        );
        d.wait_listening(&addr.to_string());
    });
    let text = panic_text(&*caught.expect_err("the server could not bind: waiting must fail"));
    assert!(text.contains("exited before listening"), "{text}");
    // And the check before starting a server refuses the taken address outright.
    let caught = std::panic::catch_unwind(|| assert_port_free(&addr.to_string()));
    assert!(
        panic_text(&*caught.expect_err("taken")).contains("is taken"),
        "assert_port_free"
    );
}

/// openssl's TLS server with the build's API server certificate on `addr`, demanding a client certificate
/// signed by the build's CA; its `-www` page echoes the client certificate. Logs go to `log`.
fn api_server(b: &Built, addr: &str, log: &Path) -> Daemon {
    let api = b.out("kubernetes");
    Daemon::listening(
        "openssl s_server",
        addr,
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                addr,
                "-www",
                "-Verify",
                "1",
                "-verify_return_error",
            ])
            .arg("-cert")
            .arg(api.join("kubernetes.pem"))
            .arg("-key")
            .arg(api.join("kubernetes-key.pem"))
            .arg("-CAfile")
            .arg(b.out("ca").join("ca.pem"))
            .stdout(std::fs::File::create(log).expect("log"))
            .stderr(Stdio::null()),
    )
}

/// `kubectl get --raw /healthz` with a kubeconfig.
fn kubectl_healthz(kubeconfig: &Path) -> std::process::Output {
    run(kubectl().arg("--kubeconfig").arg(kubeconfig).args([
        "get",
        "--raw",
        "/healthz",
        "--request-timeout=10s",
    ]))
}

#[test]
fn kubectl_mutual_tls_through_a_worker_kubeconfig() {
    if !have_kubectl() || !have_tool("openssl") {
        return;
    }
    let base = free_loopback_base(40);
    let b = Built::new(&loopback_recipe(base));
    // The API server's certificate on the load balancer's address, demanding a client certificate.
    let log = b.t.join("s_server.log");
    let server = api_server(&b, &format!("127.0.0.{}:6443", base + 6), &log);
    let out = kubectl_healthz(&b.out("node1.kubeconfig"));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // openssl's -www page shows the client certificate it verified: the kubelet's identity.
    assert!(body.contains("Client certificate"), "{body}");
    assert!(
        body.contains("O=system:nodes, OU=Kubernetes The Hard Way, CN=system:node:node1"),
        "{body}"
    );

    // The same recipe built with another seed: the server is not trusted and the client is refused.
    let other = TestDir::new();
    let seed = other.join("seed");
    ok(hardway().args(["init", "--seed-file"]).arg(&seed));
    let recipe = other.write("r.toml", &loopback_recipe(base));
    ok(hardway()
        .current_dir(other.path())
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed));
    let out = kubectl_healthz(&other.join("out/node1.kubeconfig"));
    assert!(
        !out.status.success(),
        "a kubeconfig from another seed must fail"
    );
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("verify error"), "{log}");
}

#[test]
fn nginx_proxies_kubectl_to_a_master_through_the_load_balancer_config() {
    if !have_tool("nginx") || !have_tool("openssl") || !have_kubectl() || !have_tool("tar") {
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
    let base = free_loopback_base(50);
    let b = Built::new(&loopback_recipe(base));
    // The load balancer's bundle, unpacked as push would.
    let root = b.t.join("lb-root");
    std::fs::create_dir_all(&root).expect("mkdir");
    ok(Command::new("tar")
        .arg("-xzpf")
        .arg(b.out("lb.tar.gz"))
        .arg("-C")
        .arg(&root));
    let include =
        std::fs::read_to_string(root.join("etc/nginx/modules-enabled/zz-hardway-tcpconf.conf"))
            .expect("include");
    assert!(
        include
            .lines()
            .any(|l| l == "include /etc/nginx/tcpconf.d/*.conf;"),
        "{include}"
    );
    // A top-level nginx.conf as Debian's: the stream module loaded, then the bundle's stream config.
    let conf = b.t.write(
        "nginx.conf",
        &format!(
            "load_module {};\nerror_log {}/error.log;\npid {}/nginx.pid;\nevents {{}}\ninclude {}/etc/nginx/tcpconf.d/*.conf;\n",
            module.display(),
            b.t.path().display(),
            b.t.path().display(),
            root.display()
        ),
    );
    ok(Command::new("nginx")
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(b.t.path()));
    // master1's API server (openssl with the API server certificate) behind the load balancer.
    let master1 = format!("127.0.0.{}:6443", base + 1);
    let _master = api_server(&b, &master1, &b.t.join("s_server.log"));
    // nginx in the foreground with its master and workers, all in the Daemon's process group: the test talks to
    // this nginx only (the address was free and a process of the group listens on it), and dropping the Daemon
    // stops every one of them, also when an assertion fails.
    let lb_addr = &format!("127.0.0.{}:6443", base + 6);
    let mut lb = Daemon::listening(
        "nginx",
        lb_addr,
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(b.t.path())
            .args(["-g", "daemon off; master_process on;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let started = lb.wait_processes(2);
    assert!(
        started.len() >= 2 && started.contains(&lb.pid()),
        "nginx's master and at least one worker: {started:?}"
    );
    let out = kubectl_healthz(&b.out("node2.kubeconfig"));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "through nginx: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(body.contains("CN=system:node:node2"), "{body}");
    lb.assert_running();

    // Stopped, nginx leaves nothing behind: no process of its group, nothing on its address.
    let survivors = lb.stop();
    assert!(
        survivors.is_empty(),
        "nginx processes survived: {survivors:?}"
    );
    assert!(
        group_processes(lb.pid()).is_empty(),
        "nginx's group {} still has processes",
        lb.pid()
    );
    assert_port_free(lb_addr);
    let log = std::fs::read_to_string(b.t.join("error.log")).unwrap_or_default();
    assert!(
        !log.contains("[emerg]") && !log.contains("bind()"),
        "nginx's error log: {log}"
    );
}
