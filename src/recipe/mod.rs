//! Recipes: the cluster as the user describes it, in TOML, parsed and validated.
//!
//! [`Recipe::load`] reads a file, [`Recipe::parse`] a string. Unknown keys are refused; every error names the
//! file, line, column and field. See `recipes/README.md` for the format.

mod names;
mod net;
mod raw;
mod validate;

pub use names::Maker;
pub use net::Cidr;
pub use validate::{civil_date, days_from_civil};

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::keys::Algorithm;

/// A validated recipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    pub cluster: Cluster,
    pub pki: Pki,
    pub encryption: Encryption,
    /// Hosts in recipe order.
    pub hosts: Vec<Host>,
    /// API server URL overrides by kubeconfig component (see [`KUBECONFIG_COMPONENTS`]).
    pub kubeconfig_servers: std::collections::BTreeMap<String, String>,
    /// etcd on every master, from a pinned release tarball; `None`: the recipe installs no etcd.
    pub etcd: Option<Etcd>,
}

/// `[etcd]`: the release every master runs, pinned by SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Etcd {
    /// `3.3.5`: names the tarball (`etcd-v3.3.5-linux-amd64.tar.gz`) and the store paths.
    pub version: String,
    /// Mirrors, tried in order (`https://`, `http://` or `file://`).
    pub urls: Vec<String>,
    /// The tarball's SHA-256; `None` when the recipe leaves the pin empty (a build then prints the hash).
    pub sha256: Option<[u8; 32]>,
    /// 1-based line of the `sha256` field, for messages that point at the pin.
    pub sha256_line: usize,
    /// The binaries taken from the tarball: `etcd`, `etcdctl`, and `etcdutl` from v3.5 on.
    pub binaries: Vec<String>,
    /// Optional pins of unpacked binaries, by name.
    pub members: std::collections::BTreeMap<String, [u8; 32]>,
    pub pki: EtcdPki,
}

impl Etcd {
    /// The tarball's file name in upstream's release layout.
    pub fn tarball(&self) -> String {
        format!("etcd-v{}-linux-amd64.tar.gz", self.version)
    }
}

/// Which certificates etcd uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtcdPki {
    /// The tutorial's: the API server's `kubernetes.pem` for clients and peers, trusted via the cluster CA.
    Tutorial,
    /// kubeadm's: a separate etcd CA, a server and a peer certificate per member, and an API-server client.
    Kubeadm,
}

/// Kubeconfigs whose server the recipe may override: `worker` (every kubelet), `kube-proxy`,
/// `kube-controller-manager`, `kube-scheduler`, `admin` (on masters) and `admin-remote` (operator's machine).
pub const KUBECONFIG_COMPONENTS: [&str; 6] = [
    "worker",
    "kube-proxy",
    "kube-controller-manager",
    "kube-scheduler",
    "admin",
    "admin-remote",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub domain: String,
    pub service_cidr: Cidr,
    pub cluster_cidr: Cidr,
    /// Start of every validity window, seconds since the Unix epoch (UTC).
    pub issue_date: i64,
    /// The same instant as written in the recipe (RFC 3339).
    pub issue_date_text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pki {
    /// Key algorithm for every key unless [`Pki::algorithms`] overrides it.
    pub algorithm: Algorithm,
    pub ca_validity_hours: u64,
    pub validity_hours: u64,
    pub subject: Subject,
    /// API server SANs after the computed ones, in recipe order (`pki.extra_sans`).
    pub extra_sans: Vec<AltName>,
    /// Extra client certificates (`[[pki.users]]`), in recipe order.
    pub users: Vec<PkiUser>,
    /// Key algorithm overrides by certificate base name (`[pki.algorithms]`).
    pub algorithms: BTreeMap<String, Algorithm>,
    /// Key generations by certificate base name (`[pki.generations]`); absent means 1.
    pub generations: BTreeMap<String, u64>,
}

/// Certificates every cluster has, by output base name; each worker adds one named after the host, each
/// `[[pki.users]]` entry one named [`PkiUser::cert_name`].
pub const BUILTIN_CERTIFICATES: [&str; 7] = [
    "ca",
    "admin",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubernetes",
    "service-account",
];

impl Pki {
    /// The key algorithm of the certificate `base`.
    pub fn algorithm_of(&self, base: &str) -> Algorithm {
        self.algorithms.get(base).copied().unwrap_or(self.algorithm)
    }

    /// The generation of the key of certificate `base` (1 unless the recipe rotated it).
    pub fn generation_of(&self, base: &str) -> u64 {
        self.generations.get(base).copied().unwrap_or(1)
    }
}

/// A subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AltName {
    Dns(String),
    Ip(IpAddr),
}

/// An extra client identity: a certificate with CN `name` and one O per group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiUser {
    pub name: String,
    pub groups: Vec<String>,
}

impl PkiUser {
    /// The certificate's base name: `user-<name>` (never collides with a built-in or a host).
    pub fn cert_name(&self) -> String {
        format!("user-{}", self.name)
    }
}

/// Subject attributes shared by every certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub country: String,
    pub state: String,
    pub locality: String,
    pub organizational_unit: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    pub provider: Provider,
    /// Key generations in provider order: the first encrypts, all decrypt.
    pub keys: Vec<EncryptionKey>,
}

/// Encryption-at-rest providers of `EncryptionConfiguration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Aescbc,
    Aesgcm,
    Secretbox,
    Identity,
}

impl Provider {
    pub const NAMES: [&'static str; 4] = ["aescbc", "aesgcm", "secretbox", "identity"];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Aescbc => "aescbc",
            Provider::Aesgcm => "aesgcm",
            Provider::Secretbox => "secretbox",
            Provider::Identity => "identity",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EncryptionKey {
    pub name: String,
    pub generation: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub ip: IpAddr,
    pub role: Role,
    /// Where `hardway push` reaches the host (`ssh = "user@address:port"`); `None`: `root@<ip>:22`.
    pub ssh: Option<SshTarget>,
}

impl Host {
    /// The host's SSH destination: the recipe's `ssh`, else `root@<ip>:22`.
    pub fn ssh_target(&self) -> SshTarget {
        self.ssh.clone().unwrap_or_else(|| SshTarget {
            user: "root".to_string(),
            address: self.ip.to_string(),
            port: 22,
        })
    }
}

/// An SSH destination, `user@address:port` (`user@address` means port 22; an IPv6 address goes in brackets,
/// `root@[fd00::1]:22`). The address is a host name or an IP address; `~/.ssh/config` (or `push --ssh-config`)
/// may still map it elsewhere (`HostName`, `ProxyJump`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    /// A host name or an IP address (an IPv6 address without brackets).
    pub address: String,
    pub port: u16,
}

impl SshTarget {
    /// Parses `user@address[:port]`. Nothing that could pass for an ssh option (a leading `-`), no spaces.
    pub fn parse(text: &str) -> Result<SshTarget, String> {
        let expected =
            "expected user@address:port, e.g. \"root@10.0.0.5:22\" or \"deploy@[fd00::5]:2222\"";
        let (user, rest) = text
            .split_once('@')
            .ok_or_else(|| format!("{text:?} has no user: {expected}"))?;
        let user_ok = !user.is_empty()
            && user.len() <= 32
            && !user.starts_with('-')
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !user_ok {
            return Err(format!(
                "user {user:?} is not a user name (letters, digits, '.', '_', '-'; not starting with '-'): {expected}"
            ));
        }
        let (address, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{text:?}: no ']' after the IPv6 address: {expected}"))?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{addr:?} is not an IPv6 address: {expected}"));
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    format!("{text:?}: expected ':' and a port after ']': {expected}")
                })?),
            };
            (addr.to_string(), port)
        } else {
            let (addr, port) = match rest.rsplit_once(':') {
                Some((a, p)) => (a, Some(p)),
                None => (rest, None),
            };
            if addr.contains(':') {
                return Err(format!(
                    "{text:?}: put an IPv6 address in brackets: {expected}"
                ));
            }
            let name_ok = !addr.is_empty()
                && addr.len() <= 253
                && addr.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !name_ok {
                return Err(format!(
                    "{addr:?} is neither a host name nor an IP address: {expected}"
                ));
            }
            (addr.to_string(), port)
        };
        let port = match port {
            None => 22,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && !p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(format!(
                        "port {p:?} is not a port number (1-65535): {expected}"
                    ));
                }
            },
        };
        Ok(SshTarget {
            user: user.to_string(),
            address,
            port,
        })
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.address, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.address, self.port)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Master,
    Worker,
    LoadBalancer,
}

impl Role {
    pub const NAMES: [&'static str; 3] = ["master", "worker", "load-balancer"];

    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Worker => "worker",
            Role::LoadBalancer => "load-balancer",
        }
    }
}

impl Recipe {
    pub fn masters(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.role == Role::Master)
    }

    pub fn workers(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.role == Role::Worker)
    }

    pub fn load_balancer(&self) -> Option<&Host> {
        self.hosts.iter().find(|h| h.role == Role::LoadBalancer)
    }

    /// Reads and validates a recipe file.
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let bytes = std::fs::read(path).map_err(|e| RecipeError {
            file: path.to_path_buf(),
            problems: vec![Problem {
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read recipe: {e}"),
            }],
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // Point at the first byte that is not UTF-8.
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let good = String::from_utf8_lossy(good);
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            RecipeError {
                file: path.to_path_buf(),
                problems: vec![Problem {
                    line,
                    column,
                    field: String::new(),
                    message: "the recipe is not UTF-8 text (save it as UTF-8)".to_string(),
                }],
            }
        })?;
        Recipe::parse(&text, path)
    }

    /// Parses and validates recipe text; `file` is used in error messages only.
    pub fn parse(text: &str, file: &Path) -> Result<Recipe, RecipeError> {
        validate::parse(text).map_err(|problems| RecipeError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Everything wrong with a recipe, each problem with its place.
#[derive(Debug, thiserror::Error)]
pub struct RecipeError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// One problem: 1-based line and column (0 when the whole file is at fault), the field's path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if p.line > 0 {
                write!(f, ":{}:{}", p.line, p.column)?;
            }
            if !p.field.is_empty() {
                write!(f, ": {}", p.field)?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SshTarget;

    #[test]
    fn ssh_targets() {
        let t = |s: &str| SshTarget::parse(s).map(|t| t.to_string());
        assert_eq!(t("root@10.0.0.5:22").as_deref(), Ok("root@10.0.0.5:22"));
        assert_eq!(
            t("deploy@vm1.example.com").as_deref(),
            Ok("deploy@vm1.example.com:22")
        );
        assert_eq!(
            t("deploy@[fd00::5]:2222").as_deref(),
            Ok("deploy@[fd00::5]:2222")
        );
        let a = SshTarget::parse("a_b.c-d@h:65535").expect("parse");
        assert_eq!(
            (a.user.as_str(), a.address.as_str(), a.port),
            ("a_b.c-d", "h", 65535)
        );
        for bad in [
            "10.0.0.5",
            "@10.0.0.5",
            "-oProxyCommand=x@h",
            "root@-oProxyCommand=x",
            "root@h:0",
            "root@h:022",
            "root@h:65536",
            "root@h:",
            "root@fd00::5",
            "root@[fd00::5",
            "root@[nothex]:22",
            "root@a b",
            "ro ot@h",
            "root@h;rm",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
