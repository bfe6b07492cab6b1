//! `hardway push` against real OpenSSH servers in the simulated datacenter (tests/util/datacenter.rs): one sshd
//! per host in the host's own network and mount namespaces (its /etc, /usr/local and /var are private overlays,
//! so pushing to `/` changes nothing on this machine), the client in the control namespace with a test-made
//! ssh_config (its own key, known_hosts holding the hosts' keys, StrictHostKeyChecking yes).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hardway::formats::bundle::{Manifest, RecordKind};

use crate::util::datacenter::{CONTROL, Daemon, Datacenter, HostSpec};
use crate::util::etcd::*;
use crate::util::*;

/// The seed recipe's hosts (recipes/seed.toml) and their addresses: the datacenter gives each its recipe IP.
const HOSTS: [(&str, &str); 5] = [
    ("master1", "10.128.15.221"),
    ("master2", "10.128.15.222"),
    ("node1", "10.128.15.223"),
    ("node2", "10.128.15.224"),
    ("lb", "10.128.15.226"),
];

const SSHD: &str = "/usr/sbin/sshd";
const STATE: &str = "/var/lib/hardway";

fn ip_of(host: &str) -> &'static str {
    HOSTS
        .iter()
        .find(|(h, _)| *h == host)
        .map(|(_, ip)| *ip)
        .unwrap_or_else(|| panic!("no host {host}"))
}

/// True when this machine can run these tests (see `have_tool` and `Datacenter::available`).
fn available() -> bool {
    if !Datacenter::available() {
        return false;
    }
    for tool in ["ssh", "ssh-keygen", "sshd"] {
        if !have_tool(tool) {
            return false;
        }
    }
    if !Path::new(SSHD).exists() {
        unavailable(SSHD, "Debian package openssh-server");
        return false;
    }
    true
}

/// A built seed cluster, SSH keys and an ssh_config, in one test directory.
struct Lab {
    t: TestDir,
    seed: PathBuf,
    recipe: PathBuf,
    out: PathBuf,
    ssh: PathBuf,
    /// The client's ssh_config: known_hosts holds every host's key.
    config: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_recipe(&seed_text())
    }

    /// As [`Lab::new`], with `text` as the recipe.
    fn with_recipe(text: &str) -> Lab {
        let t = TestDir::new();
        let seed = t.test_seed();
        let recipe = t.write("r.toml", text);
        let out = t.join("out");
        let ssh = t.join("ssh");
        std::fs::create_dir(&ssh).expect("mkdir ssh");
        let keygen = |file: &Path, comment: &str| {
            ok(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(file));
        };
        keygen(&ssh.join("client"), "hardway-test-client");
        std::fs::copy(ssh.join("client.pub"), ssh.join("authorized_keys"))
            .expect("authorized_keys");
        let mut known = String::new();
        for (host, ip) in HOSTS {
            keygen(&ssh.join(format!("host-{host}")), host);
            let public =
                std::fs::read_to_string(ssh.join(format!("host-{host}.pub"))).expect("pub");
            let mut f = public.split_whitespace();
            let (kind, key) = (f.next().expect("type"), f.next().expect("key"));
            known.push_str(&format!("{ip} {kind} {key}\n"));
            // Port 2222 for the test of the recipe's `ssh` field.
            known.push_str(&format!("[{ip}]:2222 {kind} {key}\n"));
        }
        std::fs::write(ssh.join("known_hosts"), known).expect("known_hosts");
        let lab = Lab {
            config: ssh.join("ssh_config"),
            t,
            seed,
            recipe,
            out,
            ssh,
        };
        lab.client_config("ssh_config", &lab.ssh.join("known_hosts"));
        lab.build();
        lab
    }

    /// Writes an ssh_config using `known_hosts`; returns its path.
    fn client_config(&self, name: &str, known_hosts: &Path) -> PathBuf {
        let path = self.ssh.join(name);
        std::fs::write(
            &path,
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                self.ssh.join("client").display(),
                known_hosts.display()
            ),
        )
        .expect("ssh_config");
        path
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.recipe).expect("recipe")
    }

    /// (Re)builds the recipe into the lab's store and out/.
    fn build(&self) {
        ok(hardway()
            .current_dir(self.t.path())
            .arg("build")
            .arg(&self.recipe)
            .arg("--seed-file")
            .arg(&self.seed)
            .arg("--out")
            .arg(&self.out));
    }

    /// Rewrites the recipe and rebuilds.
    fn rebuild(&self, text: &str) {
        std::fs::write(&self.recipe, text).expect("recipe");
        self.build();
    }

    fn manifest(&self, host: &str) -> Manifest {
        let text =
            std::fs::read_to_string(self.out.join(format!("{host}.manifest"))).expect("manifest");
        Manifest::parse(&text).expect("parse manifest")
    }

    /// A datacenter with these of the recipe's hosts, each at its recipe address.
    fn datacenter(&self, hosts: &[&str]) -> Datacenter {
        let specs: Vec<HostSpec> = hosts
            .iter()
            .map(|h| HostSpec::new(h, &format!("{}/24", ip_of(h))))
            .collect();
        Datacenter::new(&specs)
    }

    /// Starts `host`'s sshd on `port` (its host key, the client's key authorized for root), waits until it listens.
    fn sshd<'dc>(&self, dc: &'dc Datacenter, host: &str, port: u16) -> Daemon<'dc> {
        let ip = ip_of(host);
        let config = self.ssh.join(format!("sshd-{host}-{port}.conf"));
        std::fs::write(
            &config,
            format!(
                "ListenAddress {ip}\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 StrictModes no\nPrintMotd no\nPrintLastLog no\n",
                self.ssh.join(format!("host-{host}")).display(),
                self.ssh.join("authorized_keys").display()
            ),
        )
        .expect("sshd config");
        // The host's /run is its own (empty) tmpfs: sshd's privilege-separation directory goes there.
        ok(dc
            .command(host, "mkdir")
            .args(["-p", "-m", "0755", "/run/sshd"]));
        let d = dc.spawn(
            dc.command(host, SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config),
        );
        d.wait_for_log(
            &format!("Server listening on {ip} port {port}"),
            Duration::from_secs(20),
        );
        d
    }

    /// Starts an sshd on port 22 in each of `hosts`.
    fn sshds<'dc>(&self, dc: &'dc Datacenter, hosts: &[&str]) -> Vec<Daemon<'dc>> {
        hosts.iter().map(|h| self.sshd(dc, h, 22)).collect()
    }

    /// `hardway push RECIPE --out OUT --ssh-config CONFIG ARGS…` in the control namespace.
    fn push_cmd(&self, dc: &Datacenter, config: &Path, args: &[&str]) -> Command {
        self.push_from(dc, config, &self.out, args)
    }

    /// As [`Lab::push_cmd`], with the bundles read from `out`.
    fn push_from(&self, dc: &Datacenter, config: &Path, out: &Path, args: &[&str]) -> Command {
        let mut c = dc.command(CONTROL, env!("CARGO_BIN_EXE_hardway"));
        c.env_remove("HARDWAY_PUSH_SKIP_LOCAL_VERIFY")
            .arg("push")
            .arg(&self.recipe)
            .arg("--out")
            .arg(out)
            .arg("--ssh-config")
            .arg(config)
            .args(args);
        c
    }

    fn push(&self, dc: &Datacenter, args: &[&str]) -> Output {
        run(&mut self.push_cmd(dc, &self.config, args))
    }

    /// Pushes and asserts success; returns stdout.
    fn push_ok(&self, dc: &Datacenter, args: &[&str]) -> String {
        ok(&mut self.push_cmd(dc, &self.config, args))
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The summary table's result for `host` (`updated`, `unchanged`, `failed`, …).
fn result_of(summary: &str, host: &str) -> String {
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(host) && l.contains(" s"))
        .unwrap_or_else(|| panic!("no summary line for {host} in:\n{summary}"));
    // HOST  OLD → NEW  RESULT…  TIME s
    let f: Vec<&str> = line.split_whitespace().collect();
    let start = if f.get(1) == Some(&"-") { 2 } else { 4 };
    f[start..f.len() - 2].join(" ")
}

/// A path as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    kind: String,
    mode: String,
    uid: String,
    gid: String,
    mtime: String,
    sha256: String,
}

/// `stat` and `sha256sum` inside `host` for each path (`None`: absent).
fn inspect(dc: &Datacenter, host: &str, paths: &[String]) -> BTreeMap<String, Option<Seen>> {
    const SCRIPT: &str = r#"for p do
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then printf '%s|absent\n' "$p"; continue; fi
  h=-
  if [ -f "$p" ] && [ ! -L "$p" ]; then set -- $(sha256sum < "$p"); h=$1; fi
  printf '%s|%s|%s\n' "$p" "$(stat -c '%F|%a|%u|%g|%y' -- "$p")" "$h"
done"#;
    let text = ok(dc
        .command(host, "sh")
        .args(["-c", SCRIPT, "sh"])
        .args(paths));
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let entry = match f.as_slice() {
            [p, "absent"] => (p.to_string(), None),
            [p, kind, mode, uid, gid, mtime, sha] => (
                p.to_string(),
                Some(Seen {
                    kind: kind.replace("regular empty file", "regular file"),
                    mode: format!("{:0>4}", mode),
                    uid: uid.to_string(),
                    gid: gid.to_string(),
                    mtime: mtime.to_string(),
                    sha256: sha.to_string(),
                }),
            ),
            _ => panic!("inspect: {line:?}"),
        };
        seen.insert(entry.0, entry.1);
    }
    assert_eq!(seen.len(), paths.len(), "inspect output:\n{text}");
    seen
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every path of a manifest.
fn paths(m: &Manifest) -> Vec<String> {
    m.entries.keys().cloned().collect()
}

/// Asserts that `host` holds `m`'s files exactly (content, mode, owner root), its new directories with the
/// manifest's modes and owner, and that directories this machine already has kept their own mode.
fn assert_installed(
    dc: &Datacenter,
    host: &str,
    m: &Manifest,
    kept_modes: &BTreeMap<String, String>,
) {
    let seen = inspect(dc, host, &paths(m));
    for (path, rec) in &m.entries {
        let s = seen[path]
            .as_ref()
            .unwrap_or_else(|| panic!("{host}: {path} is missing"));
        match rec.kind {
            RecordKind::File(d) => {
                assert_eq!(s.kind, "regular file", "{host}: {path}");
                assert_eq!(s.sha256, hex(&d.sha256), "{host}: {path} content");
                assert_eq!(s.mode, format!("{:04o}", rec.mode), "{host}: {path} mode");
                assert_eq!(
                    (s.uid.as_str(), s.gid.as_str()),
                    ("0", "0"),
                    "{host}: {path} owner"
                );
            }
            RecordKind::Dir => {
                assert_eq!(s.kind, "directory", "{host}: {path}");
                let want = match kept_modes.get(path) {
                    Some(m) => m.clone(),
                    None if Path::new(path).exists() => machine_mode(path),
                    None => format!("{:04o}", rec.mode),
                };
                assert_eq!(s.mode, want, "{host}: directory {path} mode");
            }
        }
    }
}

/// A directory's mode on this machine (what a host sees unless it changed it).
fn machine_mode(path: &str) -> String {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    format!("{:04o}", m.permissions().mode() & 0o7777)
}

/// What the host's processes created or changed (its overlay upper layers): every non-directory by path, with
/// its mode and bytes (whiteouts show as `char device`).
fn upper_files(dc: &Datacenter, host: &str) -> BTreeMap<String, (String, Vec<u8>)> {
    let root = dc.upper(host);
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(&root).min_depth(1) {
        let e = e.expect("walk upper");
        let rel = e.path().strip_prefix(&root).expect("prefix");
        let path = format!("/{}", rel.display());
        let meta = e.path().symlink_metadata().expect("meta");
        let ft = meta.file_type();
        let mode = format!("{:04o}", meta.permissions().mode() & 0o7777);
        if ft.is_dir() {
            out.insert(format!("{path}/"), (mode, Vec::new()));
        } else if ft.is_file() {
            out.insert(path, (mode, std::fs::read(e.path()).expect("read")));
        } else if ft.is_char_device() {
            out.insert(path, ("char device".into(), Vec::new()));
        } else {
            out.insert(path, (format!("{ft:?}"), Vec::new()));
        }
    }
    out
}

fn receipt(dc: &Datacenter, host: &str) -> String {
    String::from_utf8(
        dc.read(host, &format!("{STATE}/receipt"))
            .unwrap_or_default(),
    )
    .expect("utf-8")
}

fn receipt_field(dc: &Datacenter, host: &str, field: &str) -> String {
    receipt(dc, host)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field} ")).map(str::to_string))
        .unwrap_or_else(|| panic!("{host}: no {field} in the receipt:\n{}", receipt(dc, host)))
}

// ---- 1. push everything ------------------------------------------------------------------------------------

/// Every host ends up with exactly its bundle's files, modes and owner, new directories with the manifest's
/// modes, an existing directory (node1's /var/lib, set to 0751 first) with its own; nothing else is written
/// but hardway's state (the receipt and generation 1).
#[test]
fn push_installs_each_hosts_bundle_exactly() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let names: Vec<&str> = HOSTS.iter().map(|(h, _)| *h).collect();
    let dc = lab.datacenter(&names);
    let _sshd = lab.sshds(&dc, &names);
    ok(dc.command("node1", "chmod").args(["0751", "/var/lib"]));
    let before = upper_files(&dc, "node1");

    let start = std::time::Instant::now();
    let out = lab.push_ok(&dc, &[]);
    eprintln!("push to 5 hosts: {:.2} s", start.elapsed().as_secs_f64());
    for host in &names {
        assert_eq!(result_of(&out, host), "updated", "{out}");
        let m = lab.manifest(host);
        let mut kept = BTreeMap::new();
        if *host == "node1" {
            kept.insert("/var/lib".to_string(), "0751".to_string());
        }
        assert_installed(&dc, host, &m, &kept);
        // Nothing but the bundle's files and hardway's state: the upper layers hold exactly those.
        let mut want: BTreeSet<String> = m
            .entries
            .iter()
            .filter(|(_, r)| matches!(r.kind, RecordKind::File(_)))
            .map(|(p, _)| p.clone())
            .collect();
        for s in [
            "receipt",
            "generations/1/bundle.tar.gz",
            "generations/1/manifest",
        ] {
            want.insert(format!("{STATE}/{s}"));
        }
        let upper = upper_files(&dc, host);
        let got: BTreeSet<String> = upper
            .iter()
            .filter(|(p, _)| !p.ends_with('/'))
            .map(|(p, _)| p.clone())
            .collect();
        let had: BTreeSet<String> = if *host == "node1" {
            before
                .keys()
                .filter(|p| !p.ends_with('/'))
                .cloned()
                .collect()
        } else {
            BTreeSet::new()
        };
        assert_eq!(got, &want | &had, "{host}: files written");
        assert_eq!(receipt_field(&dc, host, "generation"), "1");
        assert_eq!(receipt_field(&dc, host, "previous"), "none");
        assert_eq!(
            receipt_field(&dc, host, "bundle-sha256"),
            hex(&m.bundle.sha256)
        );
        // The kept bundle is the one pushed, private to root.
        let kept_bundle = &upper[&format!("{STATE}/generations/1/bundle.tar.gz")];
        assert_eq!(kept_bundle.0, "0600");
        assert_eq!(
            kept_bundle.1,
            std::fs::read(lab.out.join(format!("{host}.tar.gz"))).expect("bundle")
        );
        assert_eq!(
            upper[&format!("{STATE}/")].0,
            "0700",
            "{host}: state directory mode"
        );
    }
    // A master's etcd data directory is new: the manifest's 0700.
    let etcd = inspect(&dc, "master1", &["/var/lib/etcd".to_string()]);
    assert_eq!(
        etcd["/var/lib/etcd"].as_ref().expect("etcd dir").mode,
        "0700"
    );
}

/// The air gap: export on the building side, import into a project with no seed, push from there.
#[test]
fn export_then_import_then_push_needs_no_seed_on_the_far_side() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let archive = lab.t.join("cluster.hwx");
    ok(hardway()
        .current_dir(lab.t.path())
        .arg("export")
        .arg(&lab.recipe)
        .arg("--seed-file")
        .arg(&lab.seed)
        .arg("-o")
        .arg(&archive));
    let far = TestDir::new();
    ok(hardway()
        .current_dir(far.path())
        .arg("import")
        .arg(&archive)
        .arg("--public-key")
        .arg(lab.t.join("cluster.hwx.pub")));
    assert!(!far.join("secrets").exists(), "the far side has no seed");
    let recipe = far.join("recipes/r.toml");
    let names: Vec<&str> = HOSTS.iter().map(|(h, _)| *h).collect();
    let dc = lab.datacenter(&names);
    let _sshd = lab.sshds(&dc, &names);
    // No --out: the far project's out/, found from the imported recipe.
    let mut c = dc.command(CONTROL, env!("CARGO_BIN_EXE_hardway"));
    c.env_remove("HARDWAY_OUT")
        .env_remove("HARDWAY_SEED_FILE")
        .arg("push")
        .arg(&recipe)
        .arg("--ssh-config")
        .arg(&lab.config);
    let out = ok(&mut c);
    for host in &names {
        assert_eq!(result_of(&out, host), "updated", "{out}");
        assert_installed(&dc, host, &lab.manifest(host), &BTreeMap::new());
    }
}

/// The JSON object of `host` in `push --json` output.
fn json_host<'a>(json: &'a str, host: &str) -> &'a str {
    let key = format!("{{\"host\":\"{host}\"");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {host} in {json}"));
    let rest = &json[at..];
    let end = rest[1..].find("{\"host\":").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// The seed recipe with node1's key at generation 2.
fn rotated(text: &str) -> String {
    format!("{text}\n[pki.generations]\nnode1 = 2\n")
}

// ---- 2. push again -----------------------------------------------------------------------------------------

/// The same bundles again: `unchanged` everywhere, no file touched (every mtime the same, the receipt too).
#[test]
fn pushing_the_same_bundles_again_changes_nothing() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let names: Vec<&str> = HOSTS.iter().map(|(h, _)| *h).collect();
    let dc = lab.datacenter(&names);
    let _sshd = lab.sshds(&dc, &names);
    lab.push_ok(&dc, &[]);
    let mut before = BTreeMap::new();
    for host in &names {
        let mut p = paths(&lab.manifest(host));
        p.push(format!("{STATE}/receipt"));
        p.push(format!("{STATE}/generations/1/bundle.tar.gz"));
        before.insert(*host, (inspect(&dc, host, &p), upper_files(&dc, host), p));
    }
    // Modification times have a clock tick's resolution: let one pass, so a rewrite would show.
    std::thread::sleep(Duration::from_millis(20));
    let json = lab.push_ok(&dc, &["--json"]);
    assert!(json.trim_end().ends_with("\"failed\":0}"), "{json}");
    for host in &names {
        let h = json_host(&json, host);
        assert!(h.contains("\"result\":\"unchanged\""), "{h}");
        assert!(
            h.contains("\"changes\":[]") && h.contains("\"drift\":[]"),
            "{h}"
        );
        assert!(h.contains("\"generation\":1"), "{h}");
        let sha = hex(&lab.manifest(host).bundle.sha256);
        assert!(
            h.contains(&format!("\"old\":\"{sha}\",\"new\":\"{sha}\"")),
            "{h}"
        );
        let (seen, upper, p) = &before[host];
        assert_eq!(
            &inspect(&dc, host, p),
            seen,
            "{host}: a file changed (mtime, mode or content)"
        );
        assert_eq!(
            &upper_files(&dc, host),
            upper,
            "{host}: the upper layer changed"
        );
    }
}

// ---- 3. one worker's key rotated ---------------------------------------------------------------------------

/// `[pki.generations] node1 = 2`: only node1's bundle changes, so only node1 is `updated` (its three files with
/// the key, generation 2 after 1); every other host is `unchanged`.
#[test]
fn a_rotated_worker_key_updates_only_that_worker() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let names: Vec<&str> = HOSTS.iter().map(|(h, _)| *h).collect();
    let dc = lab.datacenter(&names);
    let _sshd = lab.sshds(&dc, &names);
    lab.push_ok(&dc, &[]);
    let old = lab.manifest("node1");
    lab.rebuild(&rotated(&lab.text()));
    let new = lab.manifest("node1");
    let differing: Vec<&String> = new
        .entries
        .iter()
        .filter(|(p, r)| old.entries.get(*p) != Some(r))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        differing,
        [
            "/var/lib/kubelet/kubeconfig",
            "/var/lib/kubelet/node1-key.pem",
            "/var/lib/kubelet/node1.pem"
        ],
        "the rotation changes node1's key, certificate and kubeconfig"
    );

    let out = lab.push_ok(&dc, &[]);
    for host in &names {
        let want = if *host == "node1" {
            "updated"
        } else {
            "unchanged"
        };
        assert_eq!(result_of(&out, host), want, "{out}");
    }
    for p in &differing {
        assert!(
            out.contains(&format!("node1: change {p} (content)")),
            "{out}"
        );
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.contains(": change ") || l.contains(": add "))
            .count(),
        3,
        "only node1's three files change:\n{out}"
    );
    assert_installed(&dc, "node1", &new, &BTreeMap::new());
    assert_eq!(receipt_field(&dc, "node1", "generation"), "2");
    assert_eq!(receipt_field(&dc, "node1", "previous"), "1");
    assert_eq!(receipt_field(&dc, "master1", "generation"), "1");
    // node1 keeps its previous generation for --rollback, and nothing older.
    let kept = inspect(
        &dc,
        "node1",
        &[
            format!("{STATE}/generations/1/manifest"),
            format!("{STATE}/generations/2/manifest"),
        ],
    );
    assert!(kept.values().all(Option::is_some), "{kept:?}");
}

// ---- 4. a file the recipe no longer gives a host -----------------------------------------------------------

/// Without `[etcd]`, masters no longer get etcd's binaries and unit: a push removes them (and nothing else),
/// workers are unchanged. Under a fresh `--root`, where hardway made every directory, the directories left
/// empty go too; on `/` the host's own /usr/local/bin and /etc/systemd/system stay.
#[test]
fn files_dropped_from_the_recipe_are_removed() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let names = ["master1", "master2", "node1"];
    let dc = lab.datacenter(&names);
    let _sshd = lab.sshds(&dc, &names);
    ok(dc
        .command("master1", "mkdir")
        .args(["-p", "/var/tmp/hw-root"]));
    lab.push_ok(&dc, &names);
    lab.push_ok(&dc, &["master1", "--root", "/var/tmp/hw-root"]);
    let with_etcd = lab.manifest("master1");

    let text = lab.text();
    let at = text.find("\n[etcd]").expect("[etcd] in the seed recipe");
    lab.rebuild(&text[..at + 1]);
    let without = lab.manifest("master1");
    let gone: Vec<String> = with_etcd
        .entries
        .keys()
        .filter(|p| !without.entries.contains_key(*p))
        .cloned()
        .collect();
    for p in [
        "/usr/local/bin/etcd",
        "/usr/local/bin/etcdctl",
        "/etc/systemd/system/etcd.service",
    ] {
        assert!(gone.iter().any(|g| g == p), "{p} not dropped: {gone:?}");
    }

    let out = lab.push_ok(&dc, &names);
    assert_eq!(result_of(&out, "master1"), "updated", "{out}");
    assert_eq!(result_of(&out, "master2"), "updated", "{out}");
    assert_eq!(result_of(&out, "node1"), "unchanged", "{out}");
    for master in ["master1", "master2"] {
        assert!(
            out.contains(&format!("{master}: remove /usr/local/bin/etcd\n")),
            "{out}"
        );
        let files: Vec<String> = gone
            .iter()
            .filter(|p| matches!(with_etcd.entries[*p].kind, RecordKind::File(_)))
            .cloned()
            .collect();
        for (p, s) in inspect(&dc, master, &files) {
            assert!(s.is_none(), "{master}: {p} is still there");
        }
        let m = lab.manifest(master);
        assert_installed(&dc, master, &m, &BTreeMap::new());
        assert!(!receipt(&dc, master).contains("etcd.service"));
        // The machine's own directories are not hardway's to remove.
        for d in ["/usr/local/bin", "/etc/systemd/system"] {
            assert!(
                inspect(&dc, master, &[d.to_string()])[d].is_some(),
                "{master}: {d}"
            );
        }
    }

    // Under --root, every directory is hardway's: the ones left empty are removed, the others stay.
    let out = lab.push_ok(&dc, &["master1", "--root", "/var/tmp/hw-root"]);
    assert_eq!(result_of(&out, "master1"), "updated", "{out}");
    let under = |p: &str| format!("/var/tmp/hw-root{p}");
    let dirs: Vec<String> = [
        "/usr/local/bin",
        "/usr/local",
        "/usr",
        "/etc/systemd/system",
        "/etc/systemd",
    ]
    .iter()
    .map(|p| under(p))
    .collect();
    for (p, s) in inspect(&dc, "master1", &dirs) {
        assert!(
            s.is_none(),
            "{p} (made by hardway, now empty) is still there"
        );
    }
    let kept = [
        under("/etc/etcd/ca.pem"),
        under("/var/lib/etcd"),
        under("/etc/kubernetes/admin.kubeconfig"),
    ];
    for (p, s) in inspect(&dc, "master1", &kept) {
        assert!(s.is_some(), "{p} is gone");
    }
}

// ---- 5. rollback -------------------------------------------------------------------------------------------

/// `--rollback RECIPE node1` after a key rotation restores generation 1 byte for byte (compared with the
/// generation-1 bundle unpacked by GNU tar); a second rollback returns to generation 2. With no earlier
/// generation, a rollback is refused.
#[test]
fn rollback_restores_the_previous_generation_byte_for_byte() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let _sshd = lab.sshds(&dc, &["node1"]);
    lab.push_ok(&dc, &["node1"]);
    let first = run(&mut lab.push_cmd(&dc, &lab.config, &["node1", "--rollback"]));
    assert!(!first.status.success());
    assert!(
        stdout(&first)
            .contains("no previous generation to roll back to: generation 1 is the first"),
        "{}",
        stdout(&first)
    );

    let gen1 = lab.manifest("node1");
    let unpacked = lab.t.join("gen1");
    std::fs::create_dir(&unpacked).expect("mkdir");
    ok(Command::new("tar")
        .arg("-xzf")
        .arg(lab.out.join("node1.tar.gz"))
        .arg("-C")
        .arg(&unpacked));
    lab.rebuild(&rotated(&lab.text()));
    let gen2 = lab.manifest("node1");
    lab.push_ok(&dc, &["node1"]);
    assert_installed(&dc, "node1", &gen2, &BTreeMap::new());

    let out = lab.push_ok(&dc, &["node1", "--rollback"]);
    assert_eq!(result_of(&out, "node1"), "rolled back", "{out}");
    assert_installed(&dc, "node1", &gen1, &BTreeMap::new());
    for (path, rec) in &gen1.entries {
        if let RecordKind::File(_) = rec.kind {
            let want = std::fs::read(unpacked.join(&path[1..])).expect("unpacked file");
            assert_eq!(dc.read("node1", path).as_deref(), Some(&want[..]), "{path}");
        }
    }
    assert_eq!(receipt_field(&dc, "node1", "generation"), "1");
    assert_eq!(receipt_field(&dc, "node1", "previous"), "2");
    assert_eq!(
        receipt_field(&dc, "node1", "bundle-sha256"),
        hex(&gen1.bundle.sha256)
    );

    let out = lab.push_ok(&dc, &["node1", "--rollback"]);
    assert_eq!(result_of(&out, "node1"), "rolled back", "{out}");
    assert_installed(&dc, "node1", &gen2, &BTreeMap::new());
    assert_eq!(receipt_field(&dc, "node1", "generation"), "2");
    // What was built is what node1 has again.
    let out = lab.push_ok(&dc, &["node1"]);
    assert_eq!(result_of(&out, "node1"), "unchanged", "{out}");
}

/// Copies `out/<host>.tar.gz` and `.manifest` (through the links) into `dir`, for a test to spoil.
fn copy_bundle(lab: &Lab, host: &str, dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let bundle = dir.join(format!("{host}.tar.gz"));
    let manifest = dir.join(format!("{host}.manifest"));
    std::fs::write(
        &bundle,
        std::fs::read(lab.out.join(format!("{host}.tar.gz"))).expect("read"),
    )
    .expect("write");
    std::fs::write(
        &manifest,
        std::fs::read(lab.out.join(format!("{host}.manifest"))).expect("read"),
    )
    .expect("write");
    (bundle, manifest)
}

/// Flips one bit in the middle of a file.
fn flip_a_byte(path: &Path) {
    let mut b = std::fs::read(path).expect("read");
    let at = b.len() / 2;
    b[at] ^= 0x01;
    std::fs::write(path, b).expect("write");
}

/// Lines of sshd's log that record a login.
fn logins(d: &Daemon) -> usize {
    d.log().matches("Accepted publickey").count()
}

/// `push --out DIR HOST` with the local verification turned off (the test hook).
fn push_unverified(lab: &Lab, dc: &Datacenter, out: &Path, host: &str) -> Output {
    run(lab
        .push_from(dc, &lab.config, out, &[host])
        .env("HARDWAY_PUSH_SKIP_LOCAL_VERIFY", "1"))
}

// ---- 6. corrupted streams ----------------------------------------------------------------------------------

/// A bundle with one flipped bit is refused locally, before any connection (sshd logs no new login). With the
/// local check turned off, the target refuses a bundle whose bytes are not what the manifest says — a manifest
/// with another bundle-sha256, or the flipped bundle — and keeps its files and receipt as they were.
#[test]
fn corrupted_bundles_are_refused_and_the_target_keeps_its_state() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let sshd = lab.sshd(&dc, "node1", 22);
    lab.push_ok(&dc, &["node1"]);
    let state = upper_files(&dc, "node1");
    let receipt_before = receipt(&dc, "node1");
    let logged_in = logins(&sshd);
    assert_eq!(logged_in, 1, "{}", sshd.log());

    // Locally: refused before connecting.
    let bad = lab.t.join("bad-local");
    let (bundle, _) = copy_bundle(&lab, "node1", &bad);
    flip_a_byte(&bundle);
    let o = run(&mut lab.push_from(&dc, &lab.config, &bad, &["node1"]));
    assert!(!o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("node1: ")
            && text.contains("does not match its manifest")
            && text.contains("refused before connecting"),
        "{text}"
    );
    assert_eq!(result_of(&text, "node1"), "failed");
    assert_eq!(
        logins(&sshd),
        logged_in,
        "a connection was made:\n{}",
        sshd.log()
    );

    // On the target: a new bundle (node1's key rotated), sent with a manifest naming another SHA-256.
    lab.rebuild(&rotated(&lab.text()));
    let lying = lab.t.join("bad-manifest");
    let (_, manifest) = copy_bundle(&lab, "node1", &lying);
    let real = hex(&lab.manifest("node1").bundle.sha256);
    let fake = "ab".repeat(32);
    let text = std::fs::read_to_string(&manifest)
        .expect("manifest")
        .replace(&real, &fake);
    std::fs::write(&manifest, text).expect("manifest");
    let o = push_unverified(&lab, &dc, &lying, "node1");
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains(&format!(
            "the bundle received has SHA-256 {real}, not the manifest's {fake}: refused, nothing changed"
        )),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(logins(&sshd), logged_in + 1, "the target was reached");
    assert_eq!(upper_files(&dc, "node1"), state, "the target changed");
    assert_eq!(receipt(&dc, "node1"), receipt_before);

    // On the target: the right manifest, a flipped bit in the bundle.
    let flipped = lab.t.join("bad-stream");
    let (bundle, _) = copy_bundle(&lab, "node1", &flipped);
    flip_a_byte(&bundle);
    let o = push_unverified(&lab, &dc, &flipped, "node1");
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains(&format!(
            "not the manifest's {real}: refused, nothing changed"
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(upper_files(&dc, "node1"), state, "the target changed");
    assert_eq!(receipt(&dc, "node1"), receipt_before);
}

// ---- 7. crafted bundles ------------------------------------------------------------------------------------

/// One tar member: name (raw bytes, so absolute and `..` names go in as they are), type, mode, data, link name.
struct Member<'a> {
    name: &'a str,
    kind: tar::EntryType,
    mode: u32,
    data: &'a [u8],
    link: &'a str,
}

fn member<'a>(name: &'a str, kind: tar::EntryType, mode: u32, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind,
        mode,
        data,
        link: "",
    }
}

/// A .tar.gz of `members`, and a manifest for it listing `entries` (with the bundle's real size and hashes).
fn crafted(members: &[Member], entries: &[String]) -> (Vec<u8>, String) {
    use sha2::Digest as _;
    let mut raw = Vec::new();
    {
        let mut b = tar::Builder::new(&mut raw);
        for m in members {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..m.name.len()].copy_from_slice(m.name.as_bytes());
            h.set_entry_type(m.kind);
            h.set_mode(m.mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(m.data.len() as u64);
            if !m.link.is_empty() {
                h.as_old_mut().linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
            }
            if m.kind == tar::EntryType::Char {
                h.set_device_major(1).expect("major");
                h.set_device_minor(3).expect("minor");
            }
            h.set_cksum();
            b.append(&h, m.data).expect("append");
        }
        b.finish().expect("finish");
    }
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut gz, &raw).expect("gz");
    let bytes = gz.finish().expect("gz");
    let mut manifest = format!(
        "hardway bundle manifest v1\nhost node1\nbundle-size {}\nbundle-sha256 {}\nbundle-blake3 {}\n",
        bytes.len(),
        hex(&sha2::Sha256::digest(&bytes)),
        blake3::hash(&bytes).to_hex()
    );
    for e in entries {
        manifest.push_str(e);
        manifest.push('\n');
    }
    (bytes, manifest)
}

fn sha_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(data))
}

/// Bundles made to escape or smuggle — a `..` name (in the manifest too, or only in the tar), an absolute name,
/// a symbolic link out of the root with a file written through it, a device node, a setuid file (declared, or
/// only in the tar), a hard link — each sent past the local verification: the target program refuses every one
/// before changing anything, inside its root or outside.
#[test]
fn the_target_refuses_crafted_bundles() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let _sshd = lab.sshds(&dc, &["node1"]);
    lab.push_ok(&dc, &["node1"]);
    let state = upper_files(&dc, "node1");
    let receipt_before = receipt(&dc, "node1");
    let outside = lab.t.join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let escape = format!("hardway-push-escape-{}", std::process::id());
    assert!(!Path::new("/").join(&escape).exists());

    use tar::EntryType::{Char, Directory, Link, Regular, Symlink};
    let evil = b"evil\n";
    let f = |mode: &str, data: &[u8], path: &str| {
        format!("f {mode} {} {} {path}", sha_hex(data), data.len())
    };
    let d_etc = "d 0755 /etc".to_string();
    let dotdot = format!("etc/../{escape}");
    let abs = format!("/etc/{escape}");
    let link_name = format!("etc/{escape}");
    let through = format!("etc/{escape}/evil");
    let outside_str = outside.to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<Member>, Vec<String>, String)> = vec![
        (
            "`..` in the manifest and the tar",
            vec![
                member("etc/", Directory, 0o755, b""),
                member(&dotdot, Regular, 0o644, evil),
            ],
            vec![d_etc.clone(), f("0644", evil, &format!("/etc/../{escape}"))],
            format!("/etc/../{escape} has an empty, '.' or '..' component"),
        ),
        (
            "`..` only in the tar",
            vec![
                member("etc/", Directory, 0o755, b""),
                member(&dotdot, Regular, 0o644, evil),
            ],
            vec![d_etc.clone(), f("0644", evil, &format!("/etc/{escape}"))],
            format!("bundle member refused, not in the manifest: etc/../{escape}"),
        ),
        (
            "an absolute name",
            vec![
                member("etc/", Directory, 0o755, b""),
                member(&abs, Regular, 0o644, evil),
            ],
            vec![d_etc.clone(), f("0644", evil, &abs)],
            format!("bundle member refused, not in the manifest: /etc/{escape}"),
        ),
        (
            "a symbolic link out of the root",
            vec![
                member("etc/", Directory, 0o755, b""),
                Member {
                    link: &outside_str,
                    ..member(&link_name, Symlink, 0o777, b"")
                },
                member(&through, Regular, 0o644, evil),
            ],
            vec![
                d_etc.clone(),
                format!("d 0755 /etc/{escape}"),
                f("0644", evil, &format!("/etc/{escape}/evil")),
            ],
            "bundle member refused, a symbolic link".to_string(),
        ),
        (
            "a device node",
            vec![
                member("etc/", Directory, 0o755, b""),
                member(&link_name, Char, 0o644, b""),
            ],
            vec![d_etc.clone(), f("0644", b"", &format!("/etc/{escape}"))],
            "bundle member refused, a device".to_string(),
        ),
        (
            "a setuid file the manifest declares",
            vec![
                member("etc/", Directory, 0o755, b""),
                member(&link_name, Regular, 0o4755, evil),
            ],
            vec![d_etc.clone(), f("4755", evil, &format!("/etc/{escape}"))],
            "setuid or setgid mode 4755 refused".to_string(),
        ),
        (
            "a setuid file the manifest does not declare",
            vec![
                member("etc/", Directory, 0o755, b""),
                member(&link_name, Regular, 0o4755, evil),
            ],
            vec![d_etc.clone(), f("0755", evil, &format!("/etc/{escape}"))],
            "bundle member refused, setuid or setgid".to_string(),
        ),
        (
            "a hard link",
            vec![
                member("etc/", Directory, 0o755, b""),
                Member {
                    link: "etc/passwd",
                    ..member(&link_name, Link, 0o644, b"")
                },
            ],
            vec![d_etc.clone(), f("0644", b"", &format!("/etc/{escape}"))],
            "bundle member refused, a hard link".to_string(),
        ),
    ];
    for (i, (case, members, entries, refusal)) in cases.iter().enumerate() {
        let (bytes, manifest) = crafted(members, entries);
        let out = lab.t.join(&format!("crafted-{i}"));
        std::fs::create_dir(&out).expect("mkdir");
        std::fs::write(out.join("node1.tar.gz"), &bytes).expect("write");
        std::fs::write(out.join("node1.manifest"), &manifest).expect("write");
        let o = push_unverified(&lab, &dc, &out, "node1");
        assert!(!o.status.success(), "{case}: accepted\n{}", stdout(&o));
        assert!(
            stdout(&o).contains(refusal.as_str()),
            "{case}: expected {refusal:?} in\n{}",
            stdout(&o)
        );
        assert_eq!(
            upper_files(&dc, "node1"),
            state,
            "{case}: the target changed"
        );
        assert_eq!(receipt(&dc, "node1"), receipt_before, "{case}");
        assert_eq!(
            std::fs::read_dir(&outside).expect("outside").count(),
            0,
            "{case}: wrote outside"
        );
        assert!(
            !Path::new("/").join(&escape).exists(),
            "{case}: wrote /{escape}"
        );
    }
}

// ---- 8. host keys and unreachable hosts --------------------------------------------------------------------

/// A fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
fn fingerprint(public_key: &Path) -> String {
    let out = ok(Command::new("ssh-keygen").arg("-lf").arg(public_key));
    out.split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

/// A host whose key known_hosts lacks is refused, and the error shows the key's fingerprint and how to trust
/// it (known_hosts is not touched); a host whose key differs is refused too. A host with no sshd fails alone:
/// without --keep-going no further host starts; with it the others are updated; the exit status is 1 and the
/// summary names the host that failed and why.
#[test]
fn unknown_host_keys_are_refused_and_an_unreachable_host_fails_alone() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1", "node2", "lb"]);
    let _sshd = lab.sshds(&dc, &["node1", "node2"]);

    // node2's key is not known.
    let known = std::fs::read_to_string(lab.ssh.join("known_hosts")).expect("known_hosts");
    let partial = lab.ssh.join("known_hosts-without-node2");
    let without: String = known
        .lines()
        .filter(|l| !l.contains("10.128.15.224"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&partial, &without).expect("write");
    let config = lab.client_config("ssh_config-without-node2", &partial);
    let o = run(&mut lab.push_cmd(&dc, &config, &["node2"]));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    let print = fingerprint(&lab.ssh.join("host-node2.pub"));
    for want in [
        "node2: the host key of root@10.128.15.224:22 is not known, and hardway never accepts one by itself",
        &format!("The host offers 256 {print} (ED25519)"),
        "ssh-keyscan -p 22 -t ed25519 10.128.15.224 >> ~/.ssh/known_hosts",
    ] {
        assert!(text.contains(want), "expected {want:?} in:\n{text}");
    }
    assert_eq!(result_of(&text, "node2"), "failed");
    assert_eq!(
        std::fs::read_to_string(&partial).expect("read"),
        without,
        "known_hosts changed"
    );
    assert!(receipt(&dc, "node2").is_empty(), "node2 was written to");

    // node1 presents another key than known_hosts holds for it (node2's).
    let node2_key = std::fs::read_to_string(lab.ssh.join("host-node2.pub")).expect("pub");
    let mut k = node2_key.split_whitespace();
    let swapped = format!(
        "10.128.15.223 {} {}\n",
        k.next().expect("type"),
        k.next().expect("key")
    );
    let swapped_file = lab.ssh.join("known_hosts-swapped");
    std::fs::write(&swapped_file, &swapped).expect("write");
    let config = lab.client_config("ssh_config-swapped", &swapped_file);
    let o = run(&mut lab.push_cmd(&dc, &config, &["node1"]));
    assert_eq!(o.status.code(), Some(1));
    let print1 = fingerprint(&lab.ssh.join("host-node1.pub"));
    assert!(
        stdout(&o).contains(&format!(
            "node1: the host key of root@10.128.15.223:22 is NOT the one known_hosts holds (it offers {print1})"
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&swapped_file).expect("read"),
        swapped
    );
    assert!(receipt(&dc, "node1").is_empty(), "node1 was written to");

    // lb has no sshd. One host at a time, lb first: after its failure node1 is not started.
    let o = lab.push(&dc, &["-j", "1", "lb", "node1"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert_eq!(result_of(&text, "lb"), "failed", "{text}");
    assert_eq!(result_of(&text, "node1"), "skipped", "{text}");
    assert!(text.contains("--keep-going"), "{text}");
    assert!(receipt(&dc, "node1").is_empty(), "node1 was pushed");

    // --keep-going: the others are pushed, the exit status still says one failed.
    let o = lab.push(&dc, &["-j", "1", "--keep-going", "lb", "node1", "node2"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert_eq!(result_of(&text, "lb"), "failed", "{text}");
    assert_eq!(result_of(&text, "node1"), "updated", "{text}");
    assert_eq!(result_of(&text, "node2"), "updated", "{text}");
    assert!(
        text.contains("lb: ssh to root@10.128.15.226:22 failed: ssh: connect to host 10.128.15.226 port 22: Connection refused"),
        "{text}"
    );
    assert!(
        text.contains("3 hosts (push): 1 failed, 2 updated"),
        "{text}"
    );
    for host in ["node1", "node2"] {
        assert_installed(&dc, host, &lab.manifest(host), &BTreeMap::new());
    }
}

// ---- 9. dry run and drift ----------------------------------------------------------------------------------

/// After files are edited on a host (content, mode, one removed), `--dry-run` lists exactly that drift and the
/// changes a push would make, and changes nothing (no file, mode or mtime); the push then reports the drift,
/// puts the built files back in the same generation, and a dry run finds nothing left.
#[test]
fn dry_run_shows_drift_and_the_exact_diff_and_changes_nothing() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1", "node2"]);
    let _sshd = lab.sshds(&dc, &["node1", "node2"]);
    lab.push_ok(&dc, &["node1", "node2"]);
    ok(dc.command("node1", "sh").args([
        "-c",
        "echo edited >> /var/lib/kubelet/kubeconfig && chmod 0640 /var/lib/kubernetes/ca.pem && \
         rm /var/lib/kubelet/node1.pem",
    ]));
    let mut watched = paths(&lab.manifest("node1"));
    watched.push(format!("{STATE}/receipt"));
    let seen = inspect(&dc, "node1", &watched);
    let upper = upper_files(&dc, "node1");
    std::thread::sleep(Duration::from_millis(20));

    let out = lab.push_ok(&dc, &["--dry-run", "node1", "node2"]);
    let node1: Vec<&str> = out.lines().filter(|l| l.starts_with("node1: ")).collect();
    assert_eq!(
        node1,
        [
            "node1: drift: /var/lib/kubelet/kubeconfig: content changed on the host (a push puts the built one back)",
            "node1: drift: /var/lib/kubelet/node1.pem: removed on the host (a push puts the built one back)",
            "node1: drift: /var/lib/kubernetes/ca.pem: mode changed on the host, 0644 → 0640 (a push puts the built one back)",
            "node1: would change /var/lib/kubelet/kubeconfig (content)",
            "node1: would add /var/lib/kubelet/node1.pem",
            "node1: would change /var/lib/kubernetes/ca.pem (mode 0640 → 0644)",
        ],
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("node2: ")), "{out}");
    assert_eq!(result_of(&out, "node1"), "would change 3", "{out}");
    assert_eq!(result_of(&out, "node2"), "no changes", "{out}");
    assert!(out.contains("dry run, nothing changed"), "{out}");
    assert_eq!(
        inspect(&dc, "node1", &watched),
        seen,
        "the dry run changed a file"
    );
    assert_eq!(
        upper_files(&dc, "node1"),
        upper,
        "the dry run wrote something"
    );

    let json = lab.push_ok(&dc, &["--dry-run", "--json", "node1"]);
    let h = json_host(&json, "node1");
    assert!(h.contains("\"result\":\"dry run\""), "{h}");
    assert!(
        h.contains(
            "\"drift\":[{\"kind\":\"content\",\"detail\":[],\"path\":\"/var/lib/kubelet/kubeconfig\"},\
             {\"kind\":\"missing\",\"detail\":[],\"path\":\"/var/lib/kubelet/node1.pem\"},\
             {\"kind\":\"mode\",\"detail\":[\"0644\",\"0640\"],\"path\":\"/var/lib/kubernetes/ca.pem\"}]"
        ),
        "{h}"
    );
    assert!(
        h.contains(
            "\"changes\":[{\"kind\":\"content\",\"detail\":[],\"path\":\"/var/lib/kubelet/kubeconfig\"},\
             {\"kind\":\"add\",\"detail\":[],\"path\":\"/var/lib/kubelet/node1.pem\"},\
             {\"kind\":\"mode\",\"detail\":[\"0640\",\"0644\"],\"path\":\"/var/lib/kubernetes/ca.pem\"}]"
        ),
        "{h}"
    );
    assert_eq!(
        upper_files(&dc, "node1"),
        upper,
        "the dry run wrote something"
    );

    let out = lab.push_ok(&dc, &["node1"]);
    assert_eq!(result_of(&out, "node1"), "updated", "{out}");
    assert!(
        out.contains(
            "node1: drift: /var/lib/kubelet/kubeconfig: content changed on the host (put back)"
        ),
        "{out}"
    );
    assert_installed(&dc, "node1", &lab.manifest("node1"), &BTreeMap::new());
    assert_eq!(
        receipt_field(&dc, "node1", "generation"),
        "1",
        "same bundle, same generation"
    );
    let out = lab.push_ok(&dc, &["--dry-run", "node1"]);
    assert_eq!(result_of(&out, "node1"), "no changes", "{out}");
    assert!(!out.contains("drift"), "{out}");
}

// ---- the recipe's ssh field, --sudo ------------------------------------------------------------------------

/// The recipe with `line` added to node1's [[hosts]] entry.
fn with_node1_line(text: &str, line: &str) -> String {
    let at = text.find("name = \"node1\"").expect("node1");
    let role =
        at + text[at..].find("role = \"worker\"\n").expect("role") + "role = \"worker\"\n".len();
    format!("{}{line}\n{}", &text[..role], &text[role..])
}

/// `ssh = "user@address:port"` is where push connects (node1's sshd listens on port 2222 only: without the
/// field the push fails); a malformed value is refused with its file, line and field.
#[test]
fn the_recipes_ssh_field_is_where_push_connects() {
    if !available() {
        return;
    }
    let seed = seed_text();
    assert_rejected(
        &with_node1_line(&seed, "ssh = \"root@10.128.15.223:0\""),
        "ssh = ",
        "hosts[2].ssh",
        "not a port number",
    );
    assert_rejected(
        &with_node1_line(&seed, "ssh = \"-oProxyCommand=x@10.128.15.223\""),
        "ssh = ",
        "hosts[2].ssh",
        "is not a user name",
    );

    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let _sshd = lab.sshd(&dc, "node1", 2222);
    let o = lab.push(&dc, &["node1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("port 22: Connection refused"),
        "{}",
        stdout(&o)
    );
    lab.rebuild(&with_node1_line(
        &lab.text(),
        "ssh = \"root@10.128.15.223:2222\"",
    ));
    let out = lab.push_ok(&dc, &["node1"]);
    assert_eq!(result_of(&out, "node1"), "updated", "{out}");
    assert_installed(&dc, "node1", &lab.manifest("node1"), &BTreeMap::new());
}

/// Installs a stand-in `sudo` in `host` (this machine has no sudo, and the tests' ssh user is root anyway): it
/// appends `<host> start <ns> <its first three arguments>` and `<host> end <ns>` to `log` (a file of this test,
/// which every host sees), waits `pause` seconds, drops `-n` and runs the rest.
fn fake_sudo(lab: &Lab, dc: &Datacenter, host: &str, log: &Path, pause: &str) {
    let script = lab.t.write(
        &format!("fake-sudo-{host}"),
        &format!(
            "#!/bin/sh\necho \"{host} start $(date +%s%N) $1 $2 $3\" >> {log}\nsleep {pause}\n\
             [ \"$1\" = -n ] && shift\n\"$@\"\nrc=$?\necho \"{host} end $(date +%s%N)\" >> {log}\nexit $rc\n",
            log = log.display()
        ),
    );
    ok(dc
        .command(host, "install")
        .args(["-D", "-m", "0755"])
        .arg(&script)
        .arg("/usr/local/bin/sudo"));
}

/// Each host's (start, end) in a `fake_sudo` log, in nanoseconds.
fn sessions(log: &Path) -> BTreeMap<String, (u128, u128)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut s: BTreeMap<String, (u128, u128)> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let t: u128 = f[2].parse().expect("time");
        let e = s.entry(f[0].to_string()).or_default();
        match f[1] {
            "start" => e.0 = t,
            _ => e.1 = t,
        }
    }
    s
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// `--sudo` runs the target program as `sudo -n /bin/sh -c PROGRAM`; without it, sudo is not used.
#[test]
fn sudo_runs_the_target_program_through_sudo_n() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let _sshd = lab.sshds(&dc, &["node1"]);
    let log = lab.t.join("sudo.log");
    fake_sudo(&lab, &dc, "node1", &log, "0");
    let out = lab.push_ok(&dc, &["node1", "--sudo"]);
    assert_eq!(result_of(&out, "node1"), "updated", "{out}");
    let calls = std::fs::read_to_string(&log).expect("sudo was not run");
    let first = calls.lines().next().expect("a call");
    assert!(
        first.starts_with("node1 start ") && first.ends_with(" -n /bin/sh -c"),
        "{calls}"
    );
    assert_installed(&dc, "node1", &lab.manifest("node1"), &BTreeMap::new());
    let out = lab.push_ok(&dc, &["node1"]);
    assert_eq!(result_of(&out, "node1"), "unchanged", "{out}");
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        calls,
        "without --sudo, sudo is not used"
    );
}

/// With -j 8, the two masters' sessions never overlap (workers do overlap: they run in parallel);
/// with --parallel-masters the masters overlap too. Each session is held open a second by a stand-in sudo.
#[test]
fn masters_are_pushed_one_at_a_time_unless_parallel_masters() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let names = ["master1", "master2", "node1", "node2"];
    let dc = lab.datacenter(&names);
    let _sshd = lab.sshds(&dc, &names);
    let log = lab.t.join("sessions.log");
    for h in names {
        fake_sudo(&lab, &dc, h, &log, "1");
    }
    let out = lab.push_ok(
        &dc,
        &["--sudo", "-j", "8", "master1", "master2", "node1", "node2"],
    );
    for h in names {
        assert_eq!(result_of(&out, h), "updated", "{out}");
    }
    let s = sessions(&log);
    assert_eq!(s.len(), 4, "{s:?}");
    assert!(
        !overlap(s["master1"], s["master2"]),
        "masters overlapped: {s:?}"
    );
    assert!(
        overlap(s["node1"], s["node2"]),
        "workers did not run in parallel: {s:?}"
    );

    std::fs::remove_file(&log).expect("rm log");
    let out = lab.push_ok(
        &dc,
        &[
            "--sudo",
            "--parallel-masters",
            "master1",
            "master2",
            "node1",
            "node2",
        ],
    );
    for h in names {
        assert_eq!(result_of(&out, h), "unchanged", "{out}");
    }
    let s = sessions(&log);
    assert!(
        overlap(s["master1"], s["master2"]),
        "--parallel-masters: masters one by one: {s:?}"
    );
}

/// A target without one of the tools the program needs (sha256sum hidden under /dev/null in node1's own mount
/// namespace) is refused, naming the tool, before anything is written.
#[test]
fn a_target_missing_a_tool_is_refused_naming_it() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let _sshd = lab.sshds(&dc, &["node1"]);
    ok(dc
        .command("node1", "mount")
        .args(["--bind", "/dev/null", "/usr/bin/sha256sum"]));
    let before = upper_files(&dc, "node1");
    let o = lab.push(&dc, &["node1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(
            "node1: missing on the target: sha256sum (push needs POSIX sh, GNU tar, gzip, sha256sum"
        ),
        "{}",
        stdout(&o)
    );
    assert_eq!(upper_files(&dc, "node1"), before, "something was written");
    assert!(
        Path::new("/usr/bin/sha256sum")
            .metadata()
            .is_ok_and(|m| m.len() > 0),
        "the machine's sha256sum"
    );
}

/// A non-root ssh user without --sudo: the push into a `--root` the user owns works (modes as the manifest's,
/// no chown, the user owns the files), and a push to `/` is refused by the permissions and changes nothing. The
/// user exists only in node1 (added to its private /etc).
#[test]
fn a_non_root_user_pushes_under_a_root_it_owns() {
    if !available() {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    ok(dc.command("node1", "sh").args([
        "-c",
        "useradd -M -d /var/tmp/hwdeploy -s /bin/sh -p '*' hwdeploy && mkdir -p /var/tmp/hwdeploy/root && \
         chown -R hwdeploy: /var/tmp/hwdeploy",
    ]));
    let uid = ok(dc.command("node1", "id").args(["-u", "hwdeploy"]))
        .trim()
        .to_string();
    assert_ne!(uid, "0");
    let _sshd = lab.sshds(&dc, &["node1"]);
    lab.rebuild(&with_node1_line(
        &lab.text(),
        "ssh = \"hwdeploy@10.128.15.223:22\"",
    ));
    let before = upper_files(&dc, "node1");
    let o = lab.push(&dc, &["node1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("node1: cannot create /var/lib/hardway"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        upper_files(&dc, "node1"),
        before,
        "a refused push wrote something"
    );

    let out = lab.push_ok(&dc, &["node1", "--root", "/var/tmp/hwdeploy/root"]);
    assert_eq!(result_of(&out, "node1"), "updated", "{out}");
    let m = lab.manifest("node1");
    let under: Vec<String> = paths(&m)
        .iter()
        .map(|p| format!("/var/tmp/hwdeploy/root{p}"))
        .collect();
    let seen = inspect(&dc, "node1", &under);
    for (path, rec) in &m.entries {
        let s = seen[&format!("/var/tmp/hwdeploy/root{path}")]
            .as_ref()
            .unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(s.uid, uid, "{path}: owner");
        match rec.kind {
            RecordKind::File(d) => {
                assert_eq!(s.sha256, hex(&d.sha256), "{path}");
                assert_eq!(s.mode, format!("{:04o}", rec.mode), "{path}");
            }
            RecordKind::Dir => assert_eq!(s.mode, format!("{:04o}", rec.mode), "{path}"),
        }
    }
    let out = lab.push_ok(&dc, &["node1", "--root", "/var/tmp/hwdeploy/root"]);
    assert_eq!(result_of(&out, "node1"), "unchanged", "{out}");
}

/// What push refuses before connecting anywhere (no datacenter needed): a rollback without hosts (usage, exit
/// 2), a host the recipe does not have, a relative --root, a missing bundle (exit 1, naming the host).
#[test]
fn push_refuses_bad_requests_before_connecting() {
    let t = TestDir::new();
    let recipe = t.write("r.toml", &seed_text());
    let push = |args: &[&str]| {
        run(hardway()
            .current_dir(t.path())
            .arg("push")
            .arg(&recipe)
            .args(args))
    };
    let o = push(&["--rollback"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("<HOSTS>"), "{}", stderr(&o));
    let o = push(&["node9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "node9: not a host of the recipe (its hosts: master1, master2, node1, node2, lb)"
        ),
        "{}",
        stderr(&o)
    );
    let o = push(&["node1", "--root", "srv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--root \"srv\""), "{}", stderr(&o));
    // Nothing built: the host fails on its manifest, named, and no ssh is attempted (the address is not routed
    // here, and the error is the file's).
    let o = push(&["node1", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let json = stdout(&o);
    assert!(json.contains("\"result\":\"failed\""), "{json}");
    assert!(
        json.contains("node1: reading ") && json.contains("node1.manifest: No such file"),
        "{json}"
    );
    assert!(json.trim_end().ends_with("\"failed\":1}"), "{json}");
}

// ---- 10. failures in the middle: a cut connection, a full disk ---------------------------------------------

/// A relay for ssh's `ProxyCommand` (`relay.py HOST PORT LIMIT LOG`), run by the client in the control
/// namespace: it connects to HOST:PORT, copies the server's bytes to stdout, and copies stdin to the server up
/// to LIMIT bytes (no limit when LIMIT is negative). At the limit it closes the connection at once. When it
/// stops, LOG holds `N done`: the N client bytes it forwarded.
const RELAY: &str = r#"import os, signal, socket, sys, threading
# ssh ends its proxy when it is done: the relay stops by itself instead (when both directions end), at the
# latest after 120 s.
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.alarm(120)
host, port, limit, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.create_connection((host, port), timeout=20)
s.settimeout(None)
sent = 0
def record(end=""):
    with open(log + ".tmp", "w") as f:
        f.write(f"{sent}{end}")
    os.replace(log + ".tmp", log)
def down():
    while True:
        b = s.recv(65536)
        if not b:
            break
        try:
            os.write(1, b)
        except OSError:
            break
    record(" done")
    os._exit(0)
threading.Thread(target=down, daemon=True).start()
while True:
    b = os.read(0, 65536)
    if not b:
        s.shutdown(socket.SHUT_WR)
        break
    if 0 <= limit <= sent + len(b):
        s.sendall(b[: limit - sent])
        sent = limit
        record(" done")
        os._exit(0)
    s.sendall(b)
    sent += len(b)
threading.Event().wait()
"#;

/// The count of client bytes [`RELAY`] forwarded, once it has stopped (waited for, 10 s at most).
fn relayed(log: &Path) -> u64 {
    let mut n = None;
    wait_until("the relay stops", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        match text.strip_suffix(" done") {
            Some(count) => {
                n = Some(count.parse().expect("a count"));
                Ok(())
            }
            None => Err(text),
        }
    });
    n.expect("a count")
}

/// The lab's ssh_config, with connections to `ip` going through [`RELAY`] (`limit`, `log`); returns its path.
fn relay_config(lab: &Lab, name: &str, ip: &str, limit: i64, log: &Path) -> PathBuf {
    let relay = lab.t.write("relay.py", RELAY);
    let path = lab.client_config(name, &lab.ssh.join("known_hosts"));
    let rest = std::fs::read_to_string(&path).expect("ssh_config");
    std::fs::write(
        &path,
        format!(
            "Host {ip}\n  ProxyCommand python3 {} %h %p {limit} {}\n{rest}",
            relay.display(),
            log.display()
        ),
    )
    .expect("ssh_config");
    path
}

/// Everything under hardway's state directory in `host`: each directory with its mode and owner, each other
/// path with its type, mode, owner, size, mtime and (files) SHA-256, sorted.
fn state_listing(dc: &Datacenter, host: &str) -> Vec<String> {
    let text = ok(dc.command(host, "sh").args([
        "-c",
        &format!(
            "find {STATE} -type d -printf 'd %m %u:%g %p\\n' -o ! -type d -printf '%y %m %u:%g %s %T@ %p\\n' \
             && find {STATE} -type f -exec sha256sum {{}} +"
        ),
    ]));
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// What is in hardway's state directory in `host`, by name.
fn state_entries(dc: &Datacenter, host: &str) -> String {
    ok(dc.command(host, "ls").args(["-A", STATE]))
}

/// The connection to node1 is cut while the bundle of generation 2 streams: a relay in the ssh_config forwards
/// the client's bytes only up to the middle of the bundle (counted on an uncut push of generation 1 first), then
/// closes. The push fails naming node1, after the target had computed its changes; the target undoes its
/// staging by itself (no staging directory, no lock left: not only on the next push), and its files, modes,
/// mtimes, state and receipt are exactly generation 1's. A normal push then updates it to generation 2.
#[test]
fn a_cut_connection_leaves_the_target_as_it_was() {
    if !available() || !have_tool("python3") {
        return;
    }
    let lab = Lab::new();
    let dc = lab.datacenter(&["node1"]);
    let _sshd = lab.sshds(&dc, &["node1"]);
    let ip = ip_of("node1");

    // Generation 1 through the relay, uncut: what a push sends (the program, the header, the bundle).
    let whole_log = lab.t.join("relay-whole.log");
    let whole = relay_config(&lab, "ssh_config-whole", ip, -1, &whole_log);
    let out = ok(&mut lab.push_cmd(&dc, &whole, &["node1"]));
    assert_eq!(result_of(&out, "node1"), "updated", "{out}");
    let total = relayed(&whole_log);
    let gen1 = lab.manifest("node1");
    let mut watched = paths(&gen1);
    for s in [
        "receipt",
        "generations/1/bundle.tar.gz",
        "generations/1/manifest",
    ] {
        watched.push(format!("{STATE}/{s}"));
    }
    let seen = inspect(&dc, "node1", &watched);
    let upper = upper_files(&dc, "node1");
    let state = state_listing(&dc, "node1");
    let receipt_before = receipt(&dc, "node1");
    assert_eq!(receipt_field(&dc, "node1", "generation"), "1");

    lab.rebuild(&rotated(&lab.text()));
    let size = std::fs::metadata(lab.out.join("node1.tar.gz"))
        .expect("bundle")
        .len();
    // The bundle is the last thing the client sends: half of it is missing when the relay stops here.
    let cut = total - size / 2;
    eprintln!(
        "uncut push: {total} bytes from the client; generation 2's bundle: {size} bytes; cut at {cut}"
    );
    std::thread::sleep(Duration::from_millis(20));
    let cut_log = lab.t.join("relay-cut.log");
    let config = relay_config(&lab, "ssh_config-cut", ip, cut as i64, &cut_log);
    let start = std::time::Instant::now();
    let o = run(&mut lab.push_cmd(&dc, &config, &["node1", "--json"]));
    let json = stdout(&o);
    eprintln!(
        "cut push: {:.2} s, {}\n{json}\n{}",
        start.elapsed().as_secs_f64(),
        o.status,
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(1), "{json}");
    assert_eq!(
        relayed(&cut_log),
        cut,
        "the relay did not cut the connection"
    );
    let h = json_host(&json, "node1");
    assert!(h.contains("\"result\":\"failed\""), "{h}");
    assert!(h.contains("\"error\":\"node1: "), "{h}");
    // The target had read the header and compared (its changes arrived): the cut came during the bundle.
    for p in [
        "/var/lib/kubelet/kubeconfig",
        "/var/lib/kubelet/node1-key.pem",
        "/var/lib/kubelet/node1.pem",
    ] {
        assert!(
            h.contains(&format!(
                "{{\"kind\":\"content\",\"detail\":[],\"path\":\"{p}\"}}"
            )),
            "{h}"
        );
    }

    // The target program notices the end of its connection and undoes its staging by itself.
    wait_until(
        "node1 drops its staging and lock",
        Duration::from_secs(10),
        || {
            let now = state_entries(&dc, "node1");
            if now == "generations\nreceipt\n" {
                Ok(())
            } else {
                Err(now)
            }
        },
    );
    assert_eq!(
        inspect(&dc, "node1", &watched),
        seen,
        "a file changed (content, mode or mtime)"
    );
    assert_eq!(upper_files(&dc, "node1"), upper, "the target changed");
    assert_eq!(
        state_listing(&dc, "node1"),
        state,
        "hardway's state changed"
    );
    assert_eq!(receipt(&dc, "node1"), receipt_before);

    let out = lab.push_ok(&dc, &["node1"]);
    assert_eq!(result_of(&out, "node1"), "updated", "{out}");
    assert_installed(&dc, "node1", &lab.manifest("node1"), &BTreeMap::new());
    assert_eq!(receipt_field(&dc, "node1", "generation"), "2");
    assert_eq!(receipt_field(&dc, "node1", "previous"), "1");
    eprintln!("timings: {:.2} s", start.elapsed().as_secs_f64());
}

// ---- etcd from the pushed files ----------------------------------------------------------------------------

/// Where the generated unit is on a master.
const UNIT: &str = "/etc/systemd/system/etcd.service";

/// [`seed_text`] with its [etcd] source the tarball at `path` (a `file://` URL) pinned by `sha256`, with the
/// certificate-window rule of [`recipe_with`].
fn recipe_with_etcd(path: &Path, sha256: &str) -> String {
    recipe_with(&format!("file://{}", path.display()), sha256)
}

/// The hardway state directory of `host` moved onto a tmpfs of its own with `free_kib` KiB to spare (in the
/// host's mount namespace only); returns the tmpfs's size in KiB.
fn state_on_a_small_tmpfs(dc: &Datacenter, host: &str, free_kib: u64) -> u64 {
    let used: u64 = ok(dc.command(host, "du").args(["-sk", STATE]))
        .split_whitespace()
        .next()
        .expect("du")
        .parse()
        .expect("du");
    let size = used + free_kib;
    ok(dc.command(host, "sh").args([
        "-c",
        &format!(
            "set -e; mkdir -m 0700 /run/hw-state; cp -a {STATE}/. /run/hw-state/; \
             mount -t tmpfs -o size={size}k,mode=0700 hw-full {STATE}; cp -a /run/hw-state/. {STATE}/; \
             rm -rf /run/hw-state"
        ),
    ]));
    size
}

/// master1's state directory is on a tmpfs with 64 KiB to spare when a bundle of megabytes (Debian's etcd in
/// place of the stand-in) is pushed: staging fails for lack of space, the push exits 1 naming master1 and the
/// error (`No space left on device`), and master1's files, modes, mtimes, state and receipt are generation 1's:
/// nothing half-written in /etc, /usr/local or /var (its upper layers unchanged), no staging left. With the
/// tmpfs gone, the same push succeeds.
#[test]
fn a_full_disk_leaves_the_target_as_it_was() {
    if !available() {
        return;
    }
    let Some((tarball, sha)) = debian_etcd_tarball() else {
        return;
    };
    let start = std::time::Instant::now();
    let lab = Lab::new();
    let dc = lab.datacenter(&["master1"]);
    let _sshd = lab.sshds(&dc, &["master1"]);
    let out = lab.push_ok(&dc, &["master1"]);
    assert_eq!(result_of(&out, "master1"), "updated", "{out}");
    let gen1 = lab.manifest("master1");
    let mut watched = paths(&gen1);
    for s in [
        "receipt",
        "generations/1/bundle.tar.gz",
        "generations/1/manifest",
    ] {
        watched.push(format!("{STATE}/{s}"));
    }
    let tmpfs_kib = state_on_a_small_tmpfs(&dc, "master1", 64);
    let seen = inspect(&dc, "master1", &watched);
    let upper = upper_files(&dc, "master1");
    let state = state_listing(&dc, "master1");
    let receipt_before = receipt(&dc, "master1");
    assert_eq!(receipt_field(&dc, "master1", "generation"), "1");

    lab.rebuild(&recipe_with_etcd(&tarball, &sha));
    let size = std::fs::metadata(lab.out.join("master1.tar.gz"))
        .expect("bundle")
        .len();
    assert!(
        size > 4 * tmpfs_kib * 1024,
        "the bundle ({size} bytes) must not fit in the tmpfs ({tmpfs_kib} KiB)"
    );
    eprintln!("tmpfs of {tmpfs_kib} KiB, bundle of {size} bytes");
    std::thread::sleep(Duration::from_millis(20));
    let o = lab.push(&dc, &["master1"]);
    let text = stdout(&o);
    eprintln!("{text}\n{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_eq!(result_of(&text, "master1"), "failed", "{text}");
    assert!(
        text.contains("master1: receiving the bundle failed"),
        "{text}"
    );
    assert!(
        text.contains("master1 stderr | ") && text.contains("No space left on device"),
        "{text}"
    );
    assert_eq!(
        state_entries(&dc, "master1"),
        "generations\nreceipt\n",
        "staging or the lock left behind"
    );
    assert_eq!(
        inspect(&dc, "master1", &watched),
        seen,
        "a file changed (content, mode or mtime)"
    );
    assert_eq!(
        upper_files(&dc, "master1"),
        upper,
        "something was written in /etc, /usr/local or /var"
    );
    assert_eq!(
        state_listing(&dc, "master1"),
        state,
        "hardway's state changed"
    );
    assert_eq!(receipt(&dc, "master1"), receipt_before);

    // With room again (the tmpfs unmounted: the state underneath is the same generation 1), it goes through.
    ok(dc.command("master1", "umount").arg(STATE));
    let out = lab.push_ok(&dc, &["master1"]);
    assert_eq!(result_of(&out, "master1"), "updated", "{out}");
    assert_installed(&dc, "master1", &lab.manifest("master1"), &BTreeMap::new());
    assert_eq!(receipt_field(&dc, "master1", "generation"), "2");
    eprintln!("timings: {:.2} s", start.elapsed().as_secs_f64());
}

/// The seed recipe with Debian's etcd in its release tarball, pushed over ssh to both masters (the hosts start
/// empty: no bundle is laid under them): in each, exactly the ExecStart of the pushed etcd.service (read inside
/// the host) runs the pushed /usr/local/bin/etcd. Both members become healthy, and a key written through master1
/// is read through master2.
#[test]
fn etcd_starts_from_the_pushed_files() {
    if !available() || !have_tool("etcd") || !have_tool("etcdctl") {
        return;
    }
    let Some((tarball, sha)) = debian_etcd_tarball() else {
        return;
    };
    let start = std::time::Instant::now();
    let lab = Lab::with_recipe(&recipe_with_etcd(&tarball, &sha));
    let built = start.elapsed();
    let masters = ["master1", "master2"];
    let dc = lab.datacenter(&masters);
    let _sshd = lab.sshds(&dc, &masters);
    let out = lab.push_ok(&dc, &masters);
    let pushed = start.elapsed();
    let etcd_sha = sha_hex(&std::fs::read("/usr/bin/etcd").expect("etcd"));
    let mut members = Vec::new();
    for m in masters {
        assert_eq!(result_of(&out, m), "updated", "{out}");
        assert!(dc.lower(m).is_none(), "{m} has a bundle laid under it");
        let manifest = lab.manifest(m);
        assert_installed(&dc, m, &manifest, &BTreeMap::new());
        let unit = dc
            .read(m, UNIT)
            .unwrap_or_else(|| panic!("{m} has no {UNIT}"));
        match manifest.entries.get(UNIT).map(|r| r.kind) {
            Some(RecordKind::File(d)) => assert_eq!(sha_hex(&unit), hex(&d.sha256), "{m}: {UNIT}"),
            other => panic!("{m}'s manifest: {UNIT} is {other:?}"),
        }
        let unit = String::from_utf8(unit).expect("utf-8 unit");
        let argv = exec_start(&unit);
        assert_eq!(argv[0], "/usr/local/bin/etcd", "{argv:?}");
        assert!(
            argv.windows(2).any(|w| w[0] == "--name" && w[1] == m)
                && argv.contains(&format!("https://{}:2380", ip_of(m))),
            "{m}'s unit: {argv:?}"
        );
        assert_eq!(
            dc.read(m, &argv[0]).map(|b| sha_hex(&b)).as_ref(),
            Some(&etcd_sha),
            "{m}'s {} is not Debian's etcd",
            argv[0]
        );
        members.push((m, dc.spawn(dc.command(m, &argv[0]).args(&argv[1..]))));
    }

    for m in masters {
        wait_until(&format!("{m} healthy"), Duration::from_secs(30), || {
            for (name, d) in &members {
                assert!(d.running(), "etcd on {name} exited:\n{}", d.log());
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
    let list = ok(etcdctl_on(&dc, "master1", "https://127.0.0.1:2379").args(["member", "list"]));
    let mut names: Vec<&str> = list
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(", ").collect();
            assert!(f.len() == 6 && f[1] == "started", "member list line {l:?}");
            f[2]
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, masters, "{list}");

    let value = format!("pushed-to-master1-{}", dc.id());
    assert_eq!(
        ok(etcdctl_on(&dc, "master1", "https://127.0.0.1:2379").args([
            "put",
            "hardway-push-test",
            &value
        ])),
        "OK\n"
    );
    assert_eq!(
        ok(
            etcdctl_on(&dc, "master2", "https://10.128.15.222:2379").args([
                "get",
                "hardway-push-test",
                "--print-value-only"
            ])
        ),
        format!("{value}\n")
    );
    for (m, d) in &members {
        assert!(d.running(), "etcd on {m} exited:\n{}", d.log());
    }
    drop(members);
    eprintln!(
        "timings: built {built:?}, pushed {:?}, healthy {:?}, done {:?}",
        pushed - built,
        healthy - pushed,
        start.elapsed()
    );
}
