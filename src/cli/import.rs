//! `hardway import`: check a signed export archive completely, then add it to the store, the recipes and out/.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::engine::store::{Outcome, Store};
use crate::keys::sign::PublicKey;
use crate::ops::import::stage;

/// Check a signed export archive completely, then add it (no seed needed; then `hardway push`)
///
/// Only if every check passes, its store paths go into the store, its recipe and lock into --recipes and its
/// bundle links into out/.
///
/// Checked before anything is written: the signature of MANIFEST with --public-key, then each member's name,
/// mode, size and SHA-256 against it, no member missing or extra, and each store path's derivation and output
/// hash. The first problem refuses the whole archive and names the member; there is no way to skip a check.
/// A recipe or lock already in --recipes must be identical, and out/ entries must be hardway links (else
/// nothing is changed).
/// Examples:
///   hardway import seed-cluster.hwx --public-key seed-cluster.hwx.pub
///   hardway import seed-cluster.hwx --public-key hardway-0123456789abcdef:BASE64...
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The archive.
    archive: PathBuf,
    /// The exporter's public key: `name:base64`, or a file holding it (FILE.pub from export).
    #[arg(long, value_name = "KEY")]
    public_key: String,
    #[command(flatten)]
    store: super::StoreArgs,
    #[command(flatten)]
    out: super::OutArgs,
    /// Where the recipe and its lock go [default: recipes/ under the project root].
    #[arg(long, value_name = "DIR")]
    recipes: Option<PathBuf>,
    /// Only check the archive (every check of an import, in a temporary directory); change nothing. Needs no
    /// project: what an auditor or the receiving side runs first.
    #[arg(long, conflicts_with_all = ["store", "out", "recipes"])]
    check: bool,
}

fn public_key(arg: &str) -> anyhow::Result<PublicKey> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_string()
    };
    PublicKey::parse(&text).with_context(|| {
        if path.is_file() {
            format!("{arg}: not a public key; nothing was imported")
        } else {
            "--public-key: neither a file nor a `name:base64` key; nothing was imported".to_string()
        }
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let key = public_key(&args.public_key)?;
    if args.check {
        let scratch = tempfile::tempdir().context("making a temporary directory")?;
        let store = Store::open(&scratch.path().join("store"))?;
        let file = std::fs::File::open(&args.archive)
            .with_context(|| format!("opening {}", args.archive.display()))?;
        let staged = stage(std::io::BufReader::new(file), &key, &store)
            .with_context(|| format!("{}: refused", args.archive.display()))?;
        let hosts: Vec<String> = staged
            .links()
            .iter()
            .filter_map(|(l, _, _)| l.strip_suffix(".tar.gz").map(str::to_string))
            .collect();
        println!(
            "{}: signed by {}, {} members intact; recipe {}, hosts {}",
            args.archive.display(),
            key.name,
            staged.manifest.members.len(),
            staged.manifest.recipe,
            hosts.join(", ")
        );
        return Ok(());
    }
    let project = super::project::Project::of_cwd();
    let recipes = project.resolve(args.recipes.as_deref(), "recipes", "--recipes")?;
    let out = args.out.path(&project)?;
    let store = Store::open(&args.store.path(&project)?)?;
    let file = std::fs::File::open(&args.archive)
        .with_context(|| format!("opening {}", args.archive.display()))?;
    let staged = stage(std::io::BufReader::new(file), &key, &store)
        .with_context(|| format!("{}: refused, nothing was imported", args.archive.display()))?;
    // Nothing that is not ours is replaced: check every destination before changing anything.
    let mut new_files = Vec::new();
    for name in staged.recipe_files() {
        let dest = recipes.join(&name);
        let ours = std::fs::read(staged.recipe_member(&name))
            .with_context(|| format!("reading the staged {name}"))?;
        match std::fs::read(&dest) {
            Ok(theirs) if theirs == ours => {}
            Ok(_) => anyhow::bail!(
                "{} exists and differs from the archive's {name}: nothing was imported; move it away, or use \
                 another --recipes",
                dest.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_files.push((dest, ours)),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dest.display())),
        }
    }
    let links = staged.links();
    for (link, _, _) in &links {
        super::build::ours_or_absent(&out.join(link), store.root())?;
    }
    let recipe_name = staged.manifest.recipe.clone();
    let done = staged.commit(&store)?;
    for (dest, bytes) in &new_files {
        super::write_public(dest, bytes, false)?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (link, store_name, file) in &links {
        super::build::link(&out, link, &store.path(store_name).join(file))?;
    }
    let added = done.iter().filter(|(_, o)| *o != Outcome::Reused).count();
    println!(
        "imported {}: {} store paths ({added} new), {} links in {}",
        args.archive.display(),
        done.len(),
        links.len(),
        out.display()
    );
    let recipe = recipes.join(&recipe_name);
    println!(
        "next: hardway push {}    # no seed needed; `hardway verify --bundle` checks a bundle alone",
        recipe.display()
    );
    Ok(())
}
