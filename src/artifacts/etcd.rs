//! etcd on every master: the pinned release tarball (a fixed-output source), its binaries unpacked once, those
//! binaries compressed once as a bundle segment shared by every master, and a generated `etcd.service` per
//! master from the tutorial's flags.
//!
//! Derivations (for `[etcd] version = "3.3.5"`):
//! - `etcd-v3.3.5-linux-amd64.tar.gz` — the source, keyed by its SHA-256 ([`crate::engine::source`]);
//! - `etcd-3.3.5` (`etcd.unpack`) — `bin/etcd`, `bin/etcdctl` (and `bin/etcdutl` from v3.5), 0755, read from
//!   the tarball with the `tar` crate; absolute names, `..`, links, devices anywhere in it refuse the tarball;
//!   each binary must be the archive's `<top>/<name>` and match its member pin when the recipe gives one;
//! - `etcd-3.3.5-segment` (`etcd.segment`) — those files as `/usr/local/bin/*`, compressed once;
//! - `<master>-etcd-unit` (`etcd.unit`) — `etcd.service`.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::PlanError;
use crate::engine::builder::{self, BuildContext, Builder, BuilderError};
use crate::engine::graph::Graph;
use crate::engine::source;
use crate::engine::store::{FileMode, OutputWriter};
use crate::formats::bundle::{BundleError, Entry, EntryKind, Segment};
use crate::recipe::{EtcdPki, Recipe};

/// Where the binaries go on a master.
pub const BIN_DIR: &str = "/usr/local/bin";
/// Where the unit goes.
pub const UNIT_TARGET: &str = "/etc/systemd/system/etcd.service";
pub const UNIT_FILE: &str = "etcd.service";
/// The segment's two files.
pub const SEGMENT_INDEX: &str = "segment.idx";
pub const SEGMENT_MEMBER: &str = "segment.gz";
/// The tutorial's cluster token.
pub const CLUSTER_TOKEN: &str = "etcd-cluster-0";
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
/// Input role of the unpack derivation (the tarball) and of the segment derivation (the binaries).
pub const INPUT_TARBALL: &str = "tarball";
pub const INPUT_BINARIES: &str = "binaries";

/// Why etcd's tarball or binaries were refused.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{tarball}: member {member:?} refused: {reason}")]
    UnsafeMember {
        tarball: String,
        member: String,
        reason: &'static str,
    },
    #[error(
        "{tarball}: no {name} in the archive (expected <top directory>/{name}; did the release layout change?)"
    )]
    MissingBinary { tarball: String, name: String },
    #[error("{tarball}: {name} appears twice")]
    DuplicateBinary { tarball: String, name: String },
    #[error(
        "{tarball}: {name} does not match its pin in [etcd] members:\n  specified: sha256:{specified}\n  got:       sha256:{got}"
    )]
    MemberMismatch {
        tarball: String,
        name: String,
        specified: String,
        got: String,
    },
    #[error("{tarball}: {source}")]
    Read {
        tarball: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl From<EtcdError> for BuilderError {
    fn from(e: EtcdError) -> BuilderError {
        BuilderError::artifact(e)
    }
}

/// Parameters of the unpack derivation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnpackParams {
    /// The tarball's file name in its source's store path.
    pub tarball: String,
    pub binaries: Vec<String>,
    /// Binary → SHA-256 (hex), checked after unpacking.
    pub members: BTreeMap<String, String>,
}

/// `etcd.unpack`: the binaries of a release tarball.
pub struct UnpackBuilder;

impl Builder for UnpackBuilder {
    const NAME: &'static str = "etcd.unpack";
    const VERSION: u64 = 1;
    type Params = UnpackParams;

    fn build(
        &self,
        p: UnpackParams,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        let path = ctx.input(INPUT_TARBALL)?.join(&p.tarball);
        let file = fs_err::File::open(&path).map_err(|source| BuilderError::Io {
            path: path.clone(),
            source,
        })?;
        let found = unpack(&p, std::io::BufReader::new(file))?;
        for (name, bytes) in select(&p, &found)? {
            out.file(&format!("bin/{name}"), bytes, FileMode::Executable)?;
        }
        Ok(())
    }
}

/// The wanted binaries in order, each checked against its member pin; a missing one is an error.
fn select<'a>(
    p: &UnpackParams,
    found: &'a BTreeMap<String, Vec<u8>>,
) -> Result<Vec<(&'a str, &'a [u8])>, EtcdError> {
    let mut out = Vec::new();
    for name in &p.binaries {
        let Some((name, bytes)) = found.get_key_value(name) else {
            return Err(EtcdError::MissingBinary {
                tarball: p.tarball.clone(),
                name: name.clone(),
            });
        };
        if let Some(pin) = p.members.get(name) {
            let got = source::hex(&sha2::Sha256::digest(bytes));
            if &got != pin {
                return Err(EtcdError::MemberMismatch {
                    tarball: p.tarball.clone(),
                    name: name.clone(),
                    specified: pin.clone(),
                    got,
                });
            }
        }
        out.push((name.as_str(), bytes.as_slice()));
    }
    Ok(out)
}

/// Reads the whole tarball, refusing unsafe members; returns the wanted binaries' bytes by name.
fn unpack(p: &UnpackParams, reader: impl Read) -> Result<BTreeMap<String, Vec<u8>>, EtcdError> {
    let tarball = || p.tarball.clone();
    let read = |source| EtcdError::Read {
        tarball: tarball(),
        source,
    };
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(reader));
    let mut found = BTreeMap::new();
    for entry in archive.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason| EtcdError::UnsafeMember {
            tarball: tarball(),
            member: name.clone(),
            reason,
        };
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Directory => {}
            // pax and GNU long-name records are metadata the tar crate applies to the next entry.
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Symlink | tar::EntryType::Link => return Err(refuse("a link")),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(refuse("a device or FIFO"));
            }
            _ => return Err(refuse("neither a file nor a directory")),
        }
        if name.starts_with('/') {
            return Err(refuse("an absolute name"));
        }
        let parts: Vec<&str> = name
            .trim_end_matches('/')
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(refuse("a `..` component"));
        }
        if kind != tar::EntryType::Regular || parts.len() != 2 {
            continue;
        }
        let base = parts[1].to_string();
        if !p.binaries.contains(&base) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(read)?;
        if found.insert(base.clone(), bytes).is_some() {
            return Err(EtcdError::DuplicateBinary {
                tarball: tarball(),
                name: base,
            });
        }
    }
    Ok(found)
}

/// Parameters of the segment derivation: the binaries' target directory and names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentParams {
    pub dir: String,
    pub binaries: Vec<String>,
}

/// `etcd.segment`: the binaries as bundle entries, compressed once.
pub struct SegmentBuilder;

impl Builder for SegmentBuilder {
    const NAME: &'static str = "etcd.segment";
    const VERSION: u64 = 1;
    type Params = SegmentParams;

    fn build(
        &self,
        p: SegmentParams,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        let bin = ctx.input(INPUT_BINARIES)?.join("bin");
        let entries: BTreeMap<String, Entry> = p
            .binaries
            .iter()
            .map(|name| {
                (
                    format!("{}/{name}", p.dir),
                    Entry {
                        mode: 0o755,
                        kind: EntryKind::File {
                            source: bin.join(name),
                            digest: None,
                        },
                    },
                )
            })
            .collect();
        let segment = Segment::compress(&entries).map_err(EtcdError::Bundle)?;
        out.file(SEGMENT_MEMBER, segment.member(), FileMode::Public)?;
        out.file(SEGMENT_INDEX, segment.index().as_bytes(), FileMode::Public)
    }
}

/// The TLS files a member's unit names, by layout.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnitTls {
    pub trusted_ca: String,
    pub cert: String,
    pub key: String,
    pub peer_trusted_ca: String,
    pub peer_cert: String,
    pub peer_key: String,
}

/// Parameters of a member's unit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitParams {
    pub name: String,
    pub ip: String,
    /// `name=https://ip:2380` for every member, in recipe order.
    pub initial_cluster: Vec<String>,
    pub token: String,
    pub tls: UnitTls,
    pub data_dir: String,
}

/// `etcd.unit`: `etcd.service` for one member.
pub struct UnitBuilder;

impl Builder for UnitBuilder {
    const NAME: &'static str = "etcd.unit";
    const VERSION: u64 = 1;
    type Params = UnitParams;

    fn build(
        &self,
        p: UnitParams,
        _ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        out.file(UNIT_FILE, render_unit(&p).as_bytes(), FileMode::Public)
    }
}

fn url(ip: &str, port: u16) -> String {
    match ip.parse::<IpAddr>() {
        Ok(ip) => format!("https://{}", SocketAddr::new(ip, port)),
        Err(_) => format!("https://{ip}:{port}"),
    }
}

/// The unit, with the tutorial's flags, one per line.
pub fn render_unit(p: &UnitParams) -> String {
    let flags = [
        format!("--name {}", p.name),
        format!("--cert-file={}", p.tls.cert),
        format!("--key-file={}", p.tls.key),
        format!("--peer-cert-file={}", p.tls.peer_cert),
        format!("--peer-key-file={}", p.tls.peer_key),
        format!("--trusted-ca-file={}", p.tls.trusted_ca),
        format!("--peer-trusted-ca-file={}", p.tls.peer_trusted_ca),
        "--peer-client-cert-auth".to_string(),
        "--client-cert-auth".to_string(),
        format!("--initial-advertise-peer-urls {}", url(&p.ip, PEER_PORT)),
        format!("--listen-peer-urls {}", url(&p.ip, PEER_PORT)),
        format!(
            "--listen-client-urls {},{}",
            url(&p.ip, CLIENT_PORT),
            url("127.0.0.1", CLIENT_PORT)
        ),
        format!("--advertise-client-urls {}", url(&p.ip, CLIENT_PORT)),
        format!("--initial-cluster-token {}", p.token),
        format!("--initial-cluster {}", p.initial_cluster.join(",")),
        "--initial-cluster-state new".to_string(),
        format!("--data-dir={}", p.data_dir),
    ];
    let mut s = String::from(
        "# Generated by hardway.\n[Unit]\nDescription=etcd\nDocumentation=https://github.com/etcd-io/etcd\n\n\
         [Service]\n",
    );
    s.push_str(&format!("ExecStart={BIN_DIR}/etcd \\\n"));
    for (i, f) in flags.iter().enumerate() {
        let end = if i + 1 == flags.len() { "\n" } else { " \\\n" };
        s.push_str(&format!("  {f}{end}"));
    }
    s.push_str("Restart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n");
    s
}

/// The data directory (0700 in every master's bundle).
pub const DATA_DIR: &str = "/var/lib/etcd";

/// A file a master gets for etcd: target path, mode, input derivation, file in it.
pub type EtcdFile = (String, u32, String, String);

/// What a master's bundle holds for etcd, and the TLS paths its unit names.
pub fn master_files(recipe: &Recipe, host: &str) -> (Vec<EtcdFile>, UnitTls) {
    let Some(etcd) = &recipe.etcd else {
        return (Vec::new(), tutorial_tls());
    };
    let f = |path: &str, mode: u32, input: &str, file: &str| {
        (path.to_string(), mode, input.to_string(), file.to_string())
    };
    let mut files: Vec<EtcdFile> = etcd
        .binaries
        .iter()
        .map(|b| {
            f(
                &format!("{BIN_DIR}/{b}"),
                0o755,
                &unpack_name(&etcd.version),
                &format!("bin/{b}"),
            )
        })
        .collect();
    files.push(f(UNIT_TARGET, 0o644, &unit_name(host), UNIT_FILE));
    let tls = match etcd.pki {
        EtcdPki::Tutorial => {
            files.push(f("/etc/etcd/ca.pem", 0o644, "ca", "ca.pem"));
            files.push(f(
                "/etc/etcd/kubernetes.pem",
                0o644,
                "kubernetes",
                "kubernetes.pem",
            ));
            files.push(f(
                "/etc/etcd/kubernetes-key.pem",
                0o600,
                "kubernetes",
                "kubernetes-key.pem",
            ));
            tutorial_tls()
        }
        EtcdPki::Kubeadm => {
            let server = format!("etcd-server-{host}");
            let peer = format!("etcd-peer-{host}");
            files.push(f("/etc/etcd/ca.pem", 0o644, "etcd-ca", "etcd-ca.pem"));
            files.push(f(
                "/etc/etcd/server.pem",
                0o644,
                &server,
                &format!("{server}.pem"),
            ));
            files.push(f(
                "/etc/etcd/server-key.pem",
                0o600,
                &server,
                &format!("{server}-key.pem"),
            ));
            files.push(f(
                "/etc/etcd/peer.pem",
                0o644,
                &peer,
                &format!("{peer}.pem"),
            ));
            files.push(f(
                "/etc/etcd/peer-key.pem",
                0o600,
                &peer,
                &format!("{peer}-key.pem"),
            ));
            let k = "/var/lib/kubernetes";
            files.push(f(
                &format!("{k}/etcd-ca.pem"),
                0o644,
                "etcd-ca",
                "etcd-ca.pem",
            ));
            files.push(f(
                &format!("{k}/apiserver-etcd-client.pem"),
                0o644,
                "apiserver-etcd-client",
                "apiserver-etcd-client.pem",
            ));
            files.push(f(
                &format!("{k}/apiserver-etcd-client-key.pem"),
                0o600,
                "apiserver-etcd-client",
                "apiserver-etcd-client-key.pem",
            ));
            UnitTls {
                trusted_ca: "/etc/etcd/ca.pem".into(),
                cert: "/etc/etcd/server.pem".into(),
                key: "/etc/etcd/server-key.pem".into(),
                peer_trusted_ca: "/etc/etcd/ca.pem".into(),
                peer_cert: "/etc/etcd/peer.pem".into(),
                peer_key: "/etc/etcd/peer-key.pem".into(),
            }
        }
    };
    (files, tls)
}

fn tutorial_tls() -> UnitTls {
    UnitTls {
        trusted_ca: "/etc/etcd/ca.pem".into(),
        cert: "/etc/etcd/kubernetes.pem".into(),
        key: "/etc/etcd/kubernetes-key.pem".into(),
        peer_trusted_ca: "/etc/etcd/ca.pem".into(),
        peer_cert: "/etc/etcd/kubernetes.pem".into(),
        peer_key: "/etc/etcd/kubernetes-key.pem".into(),
    }
}

/// The unpack derivation's name.
pub fn unpack_name(version: &str) -> String {
    format!("etcd-{version}")
}

/// The segment derivation's name.
pub fn segment_name(version: &str) -> String {
    format!("etcd-{version}-segment")
}

/// A member's unit derivation name.
pub fn unit_name(host: &str) -> String {
    format!("{host}-etcd-unit")
}

/// Plans the source, the unpacking, the segment and every master's unit. Returns the segment's index.
pub fn plan(recipe: &Recipe, graph: &mut Graph) -> Result<Option<usize>, PlanError> {
    let Some(etcd) = &recipe.etcd else {
        return Ok(None);
    };
    // An empty pin plans with a placeholder: `build` fetches to print the real hash and stops first.
    let pin = etcd.sha256.unwrap_or([0; 32]);
    let src = graph.add(source::derivation(&etcd.tarball(), &pin)?);
    let unpack = graph.add(builder::derivation::<UnpackBuilder>(
        unpack_name(&etcd.version),
        &UnpackParams {
            tarball: etcd.tarball(),
            binaries: etcd.binaries.clone(),
            members: etcd
                .members
                .iter()
                .map(|(k, v)| (k.clone(), source::hex(v)))
                .collect(),
        },
        BTreeMap::from([(INPUT_TARBALL.to_string(), graph.hash(src))]),
    )?);
    graph.root(&unpack_name(&etcd.version), unpack);
    let segment = graph.add(builder::derivation::<SegmentBuilder>(
        segment_name(&etcd.version),
        &SegmentParams {
            dir: BIN_DIR.to_string(),
            binaries: etcd.binaries.clone(),
        },
        BTreeMap::from([(INPUT_BINARIES.to_string(), graph.hash(unpack))]),
    )?);
    let initial_cluster: Vec<String> = recipe
        .masters()
        .map(|m| format!("{}={}", m.name, url(&m.ip.to_string(), PEER_PORT)))
        .collect();
    for m in recipe.masters() {
        let (_, tls) = master_files(recipe, &m.name);
        let node = graph.add(builder::derivation::<UnitBuilder>(
            unit_name(&m.name),
            &UnitParams {
                name: m.name.clone(),
                ip: m.ip.to_string(),
                initial_cluster: initial_cluster.clone(),
                token: CLUSTER_TOKEN.to_string(),
                tls,
                data_dir: DATA_DIR.to_string(),
            },
            BTreeMap::new(),
        )?);
        graph.root(&unit_name(&m.name), node);
    }
    Ok(Some(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(members: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut raw = Vec::new();
        {
            let mut b = tar::Builder::new(&mut raw);
            for (name, ty, data) in members {
                let mut h = tar::Header::new_gnu();
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_entry_type(*ty);
                h.set_mode(0o755);
                h.set_size(if *ty == tar::EntryType::Regular {
                    data.len() as u64
                } else {
                    0
                });
                h.set_cksum();
                let data: &[u8] = if *ty == tar::EntryType::Regular {
                    data
                } else {
                    &[]
                };
                b.append(&h, data).expect("append");
            }
            b.finish().expect("finish");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).expect("gz");
        gz.finish().expect("gz")
    }

    fn params(binaries: &[&str]) -> UnpackParams {
        UnpackParams {
            tarball: "t.tar.gz".into(),
            binaries: binaries.iter().map(|s| s.to_string()).collect(),
            members: BTreeMap::new(),
        }
    }

    const F: tar::EntryType = tar::EntryType::Regular;
    const D: tar::EntryType = tar::EntryType::Directory;

    #[test]
    fn takes_the_binaries_under_the_top_directory() {
        let t = tarball(&[
            ("etcd-v3.3.5-linux-amd64/", D, b""),
            ("etcd-v3.3.5-linux-amd64/etcd", F, b"server"),
            ("etcd-v3.3.5-linux-amd64/etcdctl", F, b"client"),
            ("etcd-v3.3.5-linux-amd64/Documentation/etcd", F, b"doc"),
            ("etcd-v3.3.5-linux-amd64/README.md", F, b"readme"),
        ]);
        let found = unpack(&params(&["etcd", "etcdctl"]), t.as_slice()).expect("unpack");
        assert_eq!(found["etcd"], b"server");
        assert_eq!(found["etcdctl"], b"client");
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn refuses_unsafe_archives() {
        for (case, members) in [
            ("absolute", vec![("/etc/passwd", F, &b"x"[..])]),
            ("dotdot", vec![("top/../../x", F, b"x")]),
            ("symlink", vec![("top/etcd", tar::EntryType::Symlink, b"")]),
            ("hardlink", vec![("top/etcd", tar::EntryType::Link, b"")]),
            ("device", vec![("top/null", tar::EntryType::Char, b"")]),
        ] {
            let t = tarball(&members);
            let err = unpack(&params(&["etcd"]), t.as_slice()).expect_err(case);
            assert!(
                matches!(err, EtcdError::UnsafeMember { .. }),
                "{case}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_binary_and_a_member_pin_mismatch_are_named() {
        let t = tarball(&[("top/etcd", F, b"server"), ("top/etcdctl", F, b"client")]);
        let mut p = params(&["etcd", "etcdctl", "etcdutl"]);
        let found = unpack(&p, t.as_slice()).expect("unpack");
        let e = select(&p, &found).expect_err("etcdutl is missing");
        assert!(
            matches!(&e, EtcdError::MissingBinary { name, .. } if name == "etcdutl"),
            "{e}"
        );
        p.binaries.pop();
        let right = source::hex(&sha2::Sha256::digest(b"server"));
        p.members.insert("etcd".into(), right);
        assert_eq!(select(&p, &found).expect("pins match").len(), 2);
        p.members.insert("etcdctl".into(), "00".repeat(32));
        let e = select(&p, &found).expect_err("etcdctl's pin is wrong");
        assert!(
            matches!(&e, EtcdError::MemberMismatch { name, .. } if name == "etcdctl"),
            "{e}"
        );
        assert!(e.to_string().contains("specified: sha256:0000"), "{e}");
    }

    #[test]
    fn unit_has_the_tutorial_flags() {
        let p = UnitParams {
            name: "master1".into(),
            ip: "10.0.0.1".into(),
            initial_cluster: vec![
                "master1=https://10.0.0.1:2380".into(),
                "master2=https://10.0.0.2:2380".into(),
            ],
            token: CLUSTER_TOKEN.into(),
            tls: tutorial_tls(),
            data_dir: DATA_DIR.into(),
        };
        let u = render_unit(&p);
        for flag in [
            "ExecStart=/usr/local/bin/etcd \\\n  --name master1 \\\n",
            "--listen-client-urls https://10.0.0.1:2379,https://127.0.0.1:2379 \\\n",
            "--initial-cluster master1=https://10.0.0.1:2380,master2=https://10.0.0.2:2380 \\\n",
            "--initial-cluster-state new \\\n",
            "--peer-client-cert-auth \\\n  --client-cert-auth \\\n",
            "  --data-dir=/var/lib/etcd\nRestart=on-failure\n",
        ] {
            assert!(u.contains(flag), "{flag:?} not in\n{u}");
        }
    }
}
