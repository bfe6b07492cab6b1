//! Helpers shared by the tests that run a real etcd (tests/etcd_cluster.rs, tests/push.rs): a stand-in release
//! tarball made from Debian's etcd binaries, a unit's ExecStart as argv, etcdctl inside a master, bounded waits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::datacenter::Datacenter;
use super::{seed_text, unavailable};

/// The release tarball's file name, as the recipe's `[etcd] version = "3.3.5"` names it.
pub const TARBALL: &str = "etcd-v3.3.5-linux-amd64.tar.gz";

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tarball in etcd's release layout, `etcd-v3.3.5-linux-amd64/{etcd,etcdctl}`, holding Debian's real
/// /usr/bin/etcd and /usr/bin/etcdctl (etcd-server/etcd-client 3.4: good stand-ins for v3.3.5, whose flags the
/// generated unit uses). Made once per test process with fixed names, modes, owner and mtime, so its SHA-256
/// only depends on the two binaries. Returns its path and SHA-256; `None` (after `unavailable`) when Debian's
/// etcd is not installed.
pub fn debian_etcd_tarball() -> Option<(PathBuf, String)> {
    for (bin, package) in [
        ("/usr/bin/etcd", "etcd-server"),
        ("/usr/bin/etcdctl", "etcd-client"),
    ] {
        if !Path::new(bin).is_file() {
            unavailable(bin, &format!("Debian package {package}"));
            return None;
        }
    }
    static MADE: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    Some(
        MADE.get_or_init(|| {
            let top = "etcd-v3.3.5-linux-amd64";
            let mut b = tar::Builder::new(Vec::new());
            let mut dir = tar::Header::new_gnu();
            dir.set_entry_type(tar::EntryType::Directory);
            dir.set_mode(0o755);
            dir.set_size(0);
            dir.set_mtime(0);
            dir.set_uid(0);
            dir.set_gid(0);
            b.append_data(&mut dir, format!("{top}/"), std::io::empty())
                .expect("tar dir");
            for name in ["etcd", "etcdctl"] {
                let bytes = std::fs::read(format!("/usr/bin/{name}")).expect("read binary");
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(bytes.len() as u64);
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                b.append_data(&mut h, format!("{top}/{name}"), bytes.as_slice())
                    .expect("tar file");
            }
            let raw = b.into_inner().expect("tar");
            let mut gz = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &raw).expect("gzip");
            let bytes = gz.finish().expect("gzip");
            let sha = sha256_hex(&bytes);
            // A directory holding only the tarball: the test mirrors serve it.
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("etcd-debian-{sha}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let path = dir.join(TARBALL);
            if std::fs::read(&path).map(|b| sha256_hex(&b)).ok().as_ref() != Some(&sha) {
                let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!(".etcd-debian-{}.tmp", std::process::id()));
                std::fs::write(&tmp, &bytes).expect("write tarball");
                std::fs::rename(&tmp, &path).expect("rename tarball");
            }
            (path, sha)
        })
        .clone(),
    )
}

/// The ExecStart command line of a systemd unit, its `\` continuations joined, split on whitespace (the
/// generated unit has no quoting).
pub fn exec_start(unit: &str) -> Vec<String> {
    let mut lines = unit.lines();
    let first = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in\n{unit}"));
    let mut line = first.to_string();
    while let Some(head) = line.strip_suffix('\\') {
        line = head.to_string();
        line.push(' ');
        line.push_str(lines.next().expect("a continuation line after `\\`"));
    }
    assert!(
        !line.contains(['"', '\'', '$', '%']),
        "the ExecStart line has quoting or substitutions this test does not parse: {line}"
    );
    line.split_whitespace().map(str::to_owned).collect()
}

/// Polls `f` until it returns Ok, for at most `timeout`; panics with `what` and the last error.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: not within {timeout:?}; last:\n{e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// etcdctl inside a master with the tutorial's TLS files from the master's /etc/etcd/.
pub fn etcdctl_on(dc: &Datacenter, master: &str, endpoint: &str) -> Command {
    etcdctl(
        dc,
        master,
        endpoint,
        Path::new("/etc/etcd/ca.pem"),
        Some((
            Path::new("/etc/etcd/kubernetes.pem"),
            Path::new("/etc/etcd/kubernetes-key.pem"),
        )),
    )
}

pub fn both(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr))
}

/// etcdctl (v3 API) in `host` against `endpoint`, with TLS files as paths `host` sees: the CA always, the
/// client certificate and key when given.
pub fn etcdctl(
    dc: &Datacenter,
    host: &str,
    endpoint: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Command {
    let mut c = dc.command(host, "/usr/bin/etcdctl");
    scrub(&mut c);
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--cacert")
        .arg(ca)
        .args(["--dial-timeout=3s", "--command-timeout=5s"]);
    if let Some((cert, key)) = client {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    c
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Proxy settings the fetcher honours: removed, so that a download can only go where the URL says.
pub const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
];

/// No inherited HARDWAY_* settings nor proxies.
pub fn scrub(c: &mut Command) -> &mut Command {
    c.env_remove("HARDWAY_SEED_FILE")
        .env_remove("HARDWAY_STORE")
        .env_remove("HARDWAY_OUT");
    for v in PROXY_VARS {
        c.env_remove(v);
    }
    c
}

/// recipes/seed.toml's certificate window: from its issue date, 2026-12-01T00:00:00Z, for `validity_hours`
/// (8760: a year).
pub const SEED_NOT_BEFORE: u64 = 1_796_083_200;
pub const SEED_NOT_AFTER: u64 = SEED_NOT_BEFORE + 8760 * 3600;

/// [`seed_text`] with its [etcd] `urls` and `sha256` lines replaced. etcd and kubectl check certificates
/// against the clock: while today (with a day to spare) is inside the seed recipe's window the text is the seed
/// recipe's, as asked; outside it every validity becomes 100 years from the same issue date (as
/// `loopback_recipe` does, addresses kept), so the test does not depend on the day it runs.
pub fn recipe_with(urls: &str, sha256: &str) -> String {
    let mut out = String::new();
    let mut replaced = 0;
    for line in seed_text().lines() {
        if line.starts_with("urls = ") {
            out.push_str(&format!("urls = [\"{urls}\"]"));
            replaced += 1;
        } else if line.starts_with("sha256 = ") {
            out.push_str(&format!("sha256 = \"{sha256}\""));
            replaced += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert_eq!(replaced, 2, "seed_text's [etcd] lines changed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if (SEED_NOT_BEFORE..SEED_NOT_AFTER - 86_400).contains(&now) {
        return out;
    }
    eprintln!(
        "today is outside the seed recipe's certificate window (2026-12-01 … 2027-12-01): certificates last \
         100 years in this test's recipe"
    );
    let wide = out
        .replace("ca_validity_hours = 43800", "ca_validity_hours = 876000")
        .replace("validity_hours = 8760 ", "validity_hours = 876000 ");
    assert!(
        wide.contains("ca_validity_hours = 876000") && wide.contains("\nvalidity_hours = 876000 "),
        "recipes/seed.toml's validity lines changed: update recipe_with"
    );
    wide
}
