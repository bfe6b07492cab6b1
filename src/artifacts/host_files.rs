//! Host files: which files each host gets, where, with which mode (owner root:root), by role; and the
//! `overlay` builder, which writes a host's overlay listing (every directory and file with mode, size and
//! SHA-256) from the files' own store paths. The bundle (`super::bundle`) packs what the listing names.
//!
//! Follows "What goes where" of the tutorial, completed: masters get the CA pair (the controller manager signs
//! with it), the API server and service-account pairs, the encryption config, the controller manager's and
//! scheduler's kubeconfigs, an admin kubeconfig and etcd's files; workers get the CA certificate, their own pair
//! and kubeconfig, and kube-proxy's kubeconfig; the load balancer gets its nginx configuration and nothing secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PlanError, etcd, lb};
use crate::engine::builder::{self, BuildContext, Builder, BuilderError};
use crate::engine::derivation::DrvHash;
use crate::engine::graph::Graph;
use crate::engine::store::{FileMode, OutputWriter};
use crate::formats::bundle::{BundleError, Overlay};
use crate::recipe::{Host, Recipe, Role};

/// The `overlay` builder: a host's overlay listing [`LISTING`].
pub struct OverlayBuilder;

impl Builder for OverlayBuilder {
    const NAME: &'static str = "overlay";
    const VERSION: u64 = 1;
    type Params = Params;

    fn build(
        &self,
        params: Params,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        let overlay = assemble(&params.host, &params.dirs, &params.files, ctx)?;
        let listing = overlay.render().map_err(HostFilesError::Bundle)?;
        out.file(LISTING, listing.as_bytes(), FileMode::Public)
    }
}

/// Why a host's files could not be listed or bundled.
#[derive(Debug, thiserror::Error)]
pub enum HostFilesError {
    #[error("{path}: mode {mode:04o} is not one of 0600, 0644, 0755")]
    Mode { path: String, mode: u32 },
    #[error("the overlay listing is for {found:?}, not {host:?}")]
    WrongHost { found: String, host: String },
    #[error("{0} is not a file of the overlay listing")]
    NotListed(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl From<HostFilesError> for BuilderError {
    fn from(e: HostFilesError) -> BuilderError {
        BuilderError::artifact(e)
    }
}

/// The overlay listing: an overlay derivation's only output.
pub const LISTING: &str = "overlay.txt";
/// Default mode of parent directories the overlay adds implicitly (all are listed explicitly anyway).
pub const PARENT_MODE: u32 = 0o755;

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
pub fn params(recipe: &Recipe, host: &Host) -> Params {
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
            if recipe.etcd.is_some() {
                // The binaries, the unit and the layout's certificates (super::etcd).
                for (path, mode, input, file) in etcd::master_files(recipe, &host.name).0 {
                    add(&path, mode, &input, &file);
                }
            } else {
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
            }
            extra_dirs.push(etcd::DATA_DIR);
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
            let input = lb::derivation_name(&host.name);
            add(lb::TARGET, 0o644, &input, lb::FILE);
            add(lb::INCLUDE_TARGET, 0o644, &input, lb::INCLUDE_FILE);
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

fn file_mode(path: &str, mode: u32) -> Result<FileMode, HostFilesError> {
    match mode {
        0o600 => Ok(FileMode::Secret),
        0o644 => Ok(FileMode::Public),
        0o755 => Ok(FileMode::Executable),
        m => Err(HostFilesError::Mode {
            path: path.to_string(),
            mode: m,
        }),
    }
}

/// The overlay with each file's source in its input's store path.
fn assemble(
    host: &str,
    dirs: &BTreeMap<String, u32>,
    files: &[FileSpec],
    ctx: &BuildContext,
) -> Result<Overlay, BuilderError> {
    let mut overlay = Overlay::new(host).map_err(HostFilesError::Bundle)?;
    for (dir, mode) in dirs {
        overlay
            .add_dir(dir, *mode, PARENT_MODE)
            .map_err(HostFilesError::Bundle)?;
    }
    for f in files {
        file_mode(&f.path, f.mode)?;
        let source = ctx.input(&f.input)?.join(&f.file);
        overlay
            .add_file(&f.path, f.mode, source, PARENT_MODE)
            .map_err(HostFilesError::Bundle)?;
    }
    Ok(overlay)
}

/// A host's planned overlay listing: its graph index, its parameters and the inputs its files come from.
pub struct PlannedHost {
    pub listing: usize,
    pub params: Params,
    pub inputs: BTreeMap<String, DrvHash>,
}

/// Plans one overlay listing per host of `recipe`, from derivations already in `graph`.
pub fn plan(recipe: &Recipe, graph: &mut Graph) -> Result<Vec<PlannedHost>, PlanError> {
    let mut planned = Vec::new();
    for host in &recipe.hosts {
        let params = params(recipe, host);
        let mut inputs = BTreeMap::new();
        for f in &params.files {
            let Some(i) = graph.find(&f.input) else {
                return Err(PlanError::MissingInput {
                    host: host.name.clone(),
                    input: f.input.clone(),
                });
            };
            inputs.insert(f.input.clone(), graph.hash(i));
        }
        let listing = graph.add(builder::derivation::<OverlayBuilder>(
            format!("{}-overlay", host.name),
            &params,
            inputs.clone(),
        )?);
        planned.push(PlannedHost {
            listing,
            params,
            inputs,
        });
    }
    Ok(planned)
}
