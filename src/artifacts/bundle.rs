//! Host bundles: the `bundle` builder packs a host's overlay listing into `<host>.tar.gz` and writes its
//! manifest `<host>.manifest`; `out/<host>.tar.gz` and `out/<host>.manifest` link to them.
//!
//! The bytes come from the deterministic writer in [`crate::formats::bundle`]; this module only says where
//! each file's bytes are (its input's store path) and checks them against the listing.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::host_files::{self, FileSpec, HostFilesError, LISTING};
use super::{PlanError, etcd};
use crate::engine::builder::{self, BuildContext, Builder, BuilderError};
use crate::engine::graph::Graph;
use crate::engine::store::{FileMode, OutputWriter};
use crate::formats::bundle::{Entry, EntryKind, Overlay, Segment, write_bundle_with_segments};
use crate::recipe::Recipe;

/// Input role of a bundle derivation for the host's overlay listing (its other inputs are the files' sources).
pub const INPUT_OVERLAY: &str = "overlay";

/// Parameters of a host's bundle derivation: where each file's bytes come from (the overlay listing gives the
/// modes, directories and digests).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleParams {
    pub host: String,
    pub files: Vec<FileSpec>,
    /// Input roles of precompressed segments spliced in (empty for most hosts: left out of the encoding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
}

/// The bundle's file names in its store path.
pub fn bundle_file(host: &str) -> String {
    format!("{host}.tar.gz")
}

pub fn manifest_file(host: &str) -> String {
    format!("{host}.manifest")
}

/// The `bundle` builder: `<host>.tar.gz` (0600: it holds keys) and `<host>.manifest`, from the overlay
/// listing (modes, directories, digests, checked against the bytes read) and the files' own store paths.
pub struct BundleBuilder;

impl Builder for BundleBuilder {
    const NAME: &'static str = "bundle";
    const VERSION: u64 = 1;
    type Params = BundleParams;

    fn build(
        &self,
        params: BundleParams,
        ctx: &BuildContext,
        out: &mut OutputWriter,
    ) -> Result<(), BuilderError> {
        let listing_path = ctx.input(INPUT_OVERLAY)?.join(LISTING);
        let listing = String::from_utf8_lossy(&ctx.read(&listing_path)?).into_owned();
        let mut overlay =
            Overlay::parse(&listing, Path::new("/")).map_err(HostFilesError::Bundle)?;
        if overlay.host != params.host {
            return Err(HostFilesError::WrongHost {
                found: overlay.host.clone(),
                host: params.host,
            }
            .into());
        }
        for f in &params.files {
            let Some(Entry {
                kind: EntryKind::File { source, .. },
                ..
            }) = overlay.entries.get_mut(&f.path)
            else {
                return Err(HostFilesError::NotListed(f.path.clone()).into());
            };
            *source = ctx.input(&f.input)?.join(&f.file);
        }
        let mut segments = Vec::new();
        for role in &params.segments {
            let dir = ctx.input(role)?;
            let index =
                String::from_utf8_lossy(&ctx.read(&dir.join(etcd::SEGMENT_INDEX))?).into_owned();
            let member = ctx.read(&dir.join(etcd::SEGMENT_MEMBER))?;
            segments.push(Segment::from_parts(&index, member).map_err(HostFilesError::Bundle)?);
        }
        let segments: Vec<&Segment> = segments.iter().collect();
        let mut tar_gz = Vec::new();
        let manifest = write_bundle_with_segments(&overlay, &segments, &mut tar_gz)
            .map_err(HostFilesError::Bundle)?;
        out.file(&bundle_file(&params.host), &tar_gz, FileMode::Secret)?;
        out.file(
            &manifest_file(&params.host),
            manifest.render().as_bytes(),
            FileMode::Public,
        )
    }
}

/// Input role of the etcd segment in a master's bundle.
pub const INPUT_ETCD_SEGMENT: &str = "etcd-segment";

/// The host whose bundle `node` is, if it is a bundle derivation (named `<host>-bundle`, see [`plan`]).
pub fn host_of(node: &crate::engine::graph::Node) -> Option<&str> {
    (node.drv.builder == BundleBuilder::NAME)
        .then(|| node.drv.name.strip_suffix("-bundle"))
        .flatten()
}

/// Plans every host's overlay listing and bundle; masters splice the etcd segment (`etcd_segment`) in.
pub fn plan(
    recipe: &Recipe,
    etcd_segment: Option<usize>,
    graph: &mut Graph,
) -> Result<(), PlanError> {
    for host in host_files::plan(recipe, graph)? {
        let mut inputs = host.inputs;
        inputs.insert(INPUT_OVERLAY.to_string(), graph.hash(host.listing));
        let name = host.params.host;
        let is_master = recipe.masters().any(|m| m.name == name);
        let mut segments = Vec::new();
        if let (Some(seg), true) = (etcd_segment, is_master) {
            inputs.insert(INPUT_ETCD_SEGMENT.to_string(), graph.hash(seg));
            segments.push(INPUT_ETCD_SEGMENT.to_string());
        }
        let bundle = graph.add(builder::derivation::<BundleBuilder>(
            format!("{name}-bundle"),
            &BundleParams {
                host: name.clone(),
                files: host.params.files,
                segments,
            },
            inputs,
        )?);
        let tar = bundle_file(&name);
        let manifest = manifest_file(&name);
        graph.root_file(&tar, bundle, &tar);
        graph.root_file(&manifest, bundle, &manifest);
    }
    Ok(())
}
