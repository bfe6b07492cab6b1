//! Host overlays: which files each host gets, where, with which mode (owner root:root), by role.
//!
//! Follows "What goes where" of the tutorial, completed: masters get the CA pair (the controller manager signs
//! with it), the API server and service-account pairs, the encryption config, the controller manager's and
//! scheduler's kubeconfigs, an admin kubeconfig and etcd's files; workers get the CA certificate, their own pair
//! and kubeconfig, and kube-proxy's kubeconfig; the load balancer gets its nginx configuration and nothing secret.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::build::{BuildContext, input};
use crate::bundle::{Entry, EntryKind, Overlay, write_bundle};
use crate::nginx;
use crate::recipe::{Host, Role};
use crate::store::{FileMode, OutputWriter};

pub const BUILDER: &str = "overlay";
pub const BUILDER_VERSION: u64 = 1;

/// One file of an overlay: the target path, its mode, and where its bytes come from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub mode: u32,
    /// Input role (the name of the derivation that made the file).
    pub input: String,
    /// File name inside that input's store path.
    pub file: String,
}

/// Parameters of a host's overlay derivation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Params {
    pub host: String,
    /// Directories with explicit modes (every parent of every file is listed).
    pub dirs: BTreeMap<String, u32>,
    pub files: Vec<FileSpec>,
}

/// Directory modes: private where the tutorial's daemons keep state, 0755 elsewhere.
fn dir_mode(path: &str) -> u32 {
    match path {
        "/var/lib/etcd" => 0o700,
        _ => 0o755,
    }
}

/// The overlay of `host`: `(input derivation name, file in it)` for each target.
/// Input names are those of the plan: certificate base names, `encryption-config`, `<base>-kubeconfig`,
/// `<lb>-nginx-stream`.
pub fn params(host: &Host) -> Params {
    let mut files = Vec::new();
    let mut add = |path: &str, mode: u32, input: &str, file: &str| {
        files.push(FileSpec {
            path: path.to_string(),
            mode,
            input: input.to_string(),
            file: file.to_string(),
        });
    };
    let mut extra_dirs = Vec::new();
    match host.role {
        Role::Master => {
            let k = "/var/lib/kubernetes";
            add(&format!("{k}/ca.pem"), 0o644, "ca", "ca.pem");
            add(&format!("{k}/ca-key.pem"), 0o600, "ca", "ca-key.pem");
            add(
                &format!("{k}/kubernetes.pem"),
                0o644,
                "kubernetes",
                "kubernetes.pem",
            );
            add(
                &format!("{k}/kubernetes-key.pem"),
                0o600,
                "kubernetes",
                "kubernetes-key.pem",
            );
            add(
                &format!("{k}/service-account.pem"),
                0o644,
                "service-account",
                "service-account.pem",
            );
            add(
                &format!("{k}/service-account-key.pem"),
                0o600,
                "service-account",
                "service-account-key.pem",
            );
            add(
                &format!("{k}/encryption-config.yaml"),
                0o600,
                "encryption-config",
                "encryption-config.yaml",
            );
            for c in ["kube-controller-manager", "kube-scheduler"] {
                add(
                    &format!("{k}/{c}.kubeconfig"),
                    0o600,
                    &format!("{c}-kubeconfig"),
                    &format!("{c}.kubeconfig"),
                );
            }
            add(
                "/etc/kubernetes/admin.kubeconfig",
                0o600,
                "admin-kubeconfig",
                "admin.kubeconfig",
            );
            add("/etc/etcd/ca.pem", 0o644, "ca", "ca.pem");
            add(
                "/etc/etcd/kubernetes.pem",
                0o644,
                "kubernetes",
                "kubernetes.pem",
            );
            add(
                "/etc/etcd/kubernetes-key.pem",
                0o600,
                "kubernetes",
                "kubernetes-key.pem",
            );
            extra_dirs.push("/var/lib/etcd");
        }
        Role::Worker => {
            let n = &host.name;
            add("/var/lib/kubernetes/ca.pem", 0o644, "ca", "ca.pem");
            add(
                &format!("/var/lib/kubelet/{n}.pem"),
                0o644,
                n,
                &format!("{n}.pem"),
            );
            add(
                &format!("/var/lib/kubelet/{n}-key.pem"),
                0o600,
                n,
                &format!("{n}-key.pem"),
            );
            add(
                "/var/lib/kubelet/kubeconfig",
                0o600,
                &format!("{n}-kubeconfig"),
                &format!("{n}.kubeconfig"),
            );
            add(
                "/var/lib/kube-proxy/kubeconfig",
                0o600,
                "kube-proxy-kubeconfig",
                "kube-proxy.kubeconfig",
            );
        }
        Role::LoadBalancer => {
            let input = format!("{}-nginx-stream", host.name);
            add(nginx::TARGET, 0o644, &input, nginx::FILE);
            add(nginx::INCLUDE_TARGET, 0o644, &input, nginx::INCLUDE_FILE);
        }
    }
    let mut dirs = BTreeMap::new();
    let parents = files
        .iter()
        .map(|f| f.path.as_str())
        .chain(extra_dirs.iter().copied());
    for p in parents {
        let mut cur = p;
        if extra_dirs.contains(&p) {
            dirs.insert(p.to_string(), dir_mode(p));
        }
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            dirs.entry(parent.to_string())
                .or_insert_with(|| dir_mode(parent));
            cur = parent;
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Params {
        host: host.name.clone(),
        dirs,
        files,
    }
}

pub const BUNDLE_BUILDER: &str = "bundle";
pub const BUNDLE_BUILDER_VERSION: u64 = 1;
/// Input role of a bundle derivation for the host's overlay listing (its other inputs are the files' sources).
pub const INPUT_OVERLAY: &str = "overlay";
/// The overlay listing: an overlay derivation's only output.
pub const LISTING: &str = "overlay.txt";
/// Default mode of parent directories the overlay adds implicitly (all are listed explicitly anyway).
const PARENT_MODE: u32 = 0o755;

/// Parameters of a host's bundle derivation: where each file's bytes come from (the overlay listing gives the
/// modes, directories and digests).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleParams {
    pub host: String,
    pub files: Vec<FileSpec>,
}

/// The bundle's file names in its store path.
pub fn bundle_file(host: &str) -> String {
    format!("{host}.tar.gz")
}

pub fn manifest_file(host: &str) -> String {
    format!("{host}.manifest")
}

fn file_mode(path: &str, mode: u32) -> Result<FileMode, String> {
    match mode {
        0o600 => Ok(FileMode::Secret),
        0o644 => Ok(FileMode::Public),
        0o755 => Ok(FileMode::Executable),
        m => Err(format!(
            "{path}: mode {m:04o} is not one of 0600, 0644, 0755"
        )),
    }
}

/// Builds a host's overlay listing `overlay.txt`: every directory and file with its mode, and each file's size
/// and SHA-256. The bytes stay in their own store paths: the bundle reads them from there.
pub fn build(params: &Params, ctx: &BuildContext, out: &mut OutputWriter) -> Result<(), String> {
    let overlay = assemble(&params.host, &params.dirs, &params.files, ctx)?;
    let listing = overlay.render().map_err(|e| e.to_string())?;
    out.file(LISTING, listing.as_bytes(), FileMode::Public)
}

/// The overlay with each file's source in its input's store path.
fn assemble(
    host: &str,
    dirs: &BTreeMap<String, u32>,
    files: &[FileSpec],
    ctx: &BuildContext,
) -> Result<Overlay, String> {
    let mut overlay = Overlay::new(host).map_err(|e| e.to_string())?;
    for (dir, mode) in dirs {
        overlay
            .add_dir(dir, *mode, PARENT_MODE)
            .map_err(|e| e.to_string())?;
    }
    for f in files {
        file_mode(&f.path, f.mode)?;
        let source = input(ctx, &f.input)?.join(&f.file);
        overlay
            .add_file(&f.path, f.mode, source, PARENT_MODE)
            .map_err(|e| e.to_string())?;
    }
    Ok(overlay)
}

/// Builds a host's bundle: `<host>.tar.gz` (0600: it holds keys) and `<host>.manifest`, from the overlay
/// listing (modes, directories, digests, checked against the bytes read) and the files' own store paths.
pub fn build_bundle(
    params: &BundleParams,
    ctx: &BuildContext,
    out: &mut OutputWriter,
) -> Result<(), String> {
    let listing_path = input(ctx, INPUT_OVERLAY)?.join(LISTING);
    let listing = std::fs::read_to_string(&listing_path)
        .map_err(|e| format!("reading {}: {e}", listing_path.display()))?;
    let mut overlay = Overlay::parse(&listing, Path::new("/")).map_err(|e| e.to_string())?;
    if overlay.host != params.host {
        return Err(format!(
            "overlay is for {:?}, not {:?}",
            overlay.host, params.host
        ));
    }
    for f in &params.files {
        let Some(Entry {
            kind: EntryKind::File { source, .. },
            ..
        }) = overlay.entries.get_mut(&f.path)
        else {
            return Err(format!("{} is not a file of the overlay listing", f.path));
        };
        *source = input(ctx, &f.input)?.join(&f.file);
    }
    let mut tar_gz = Vec::new();
    let manifest = write_bundle(&overlay, &mut tar_gz).map_err(|e| e.to_string())?;
    out.file(&bundle_file(&params.host), &tar_gz, FileMode::Secret)?;
    out.file(
        &manifest_file(&params.host),
        manifest.render().as_bytes(),
        FileMode::Public,
    )
}
