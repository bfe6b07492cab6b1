//! `hardway export`: write a signed archive of hosts' bundles for an air gap.

use std::path::PathBuf;

use anyhow::Context;

use crate::ops::export::{Request, export, signing_key};

/// Write a signed archive of hosts' bundles for an air gap (public key in FILE.pub)
///
/// The archive holds the hosts' bundles and manifests (as store paths), the pinned sources they contain, the
/// recipe and its lock, and a MANIFEST of every member's size and SHA-256 signed with an Ed25519 key derived
/// from the seed.
///
/// The public key is printed and written beside the archive as FILE.pub (`name:base64`, Nix's format): give
/// it to `hardway import` on the other side. The same build gives the same archive bytes. The archive holds
/// the hosts' private keys, like the bundles: it is written 0600; move it as you would move them.
/// Examples:
///   hardway export recipes/seed.toml -o seed-cluster.hwx
///   hardway export recipes/seed.toml node1 node2 -o workers.hwx
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Hosts whose bundles go in [default: every host].
    hosts: Vec<String>,
    /// The archive to write (replaced atomically if it exists).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let super::Loaded {
        recipe,
        seed,
        plan,
        store,
        ..
    } = args.target.load()?;
    for h in &args.hosts {
        if !recipe.hosts.iter().any(|x| &x.name == h) {
            anyhow::bail!(
                "{}: no host {h:?} in the recipe",
                args.target.recipe.display()
            );
        }
    }
    if let Some(n) = plan.nodes.iter().find(|n| !store.is_built(&n.store_name)) {
        anyhow::bail!(
            "{} is not built: run `hardway build {}` first",
            n.store_name,
            args.target.recipe.display()
        );
    }
    let lock = crate::ops::lock::Lock::of(&plan, &store, seed.fingerprint())?;
    let key = signing_key(&seed)?;
    // The public key first: an archive is never left beside a stale key (a lone key file is harmless).
    let public = key.public().to_string();
    let pub_path = PathBuf::from(format!("{}.pub", args.output.display()));
    super::write_public(&pub_path, format!("{public}\n").as_bytes(), true)?;
    let summary = export(
        &Request {
            graph: &plan,
            store: &store,
            recipe: &args.target.recipe,
            lock: &lock.render(),
            hosts: &args.hosts,
            key: &key,
        },
        &args.output,
    )
    .with_context(|| format!("exporting to {}", args.output.display()))?;
    println!(
        "exported {} ({}) to {}: {} members, {} bytes, signed by {}",
        if summary.hosts.len() == 1 {
            "1 host".to_string()
        } else {
            format!("{} hosts", summary.hosts.len())
        },
        summary.hosts.join(", "),
        args.output.display(),
        summary.members,
        summary.bytes,
        key.public().name
    );
    println!("public key: {public}  (also in {})", pub_path.display());
    eprintln!(
        "hardway: the archive holds the hosts' private keys (mode 0600): move it as you would the bundles; on the \
         other side: hardway import {} --public-key {}",
        args.output.display(),
        pub_path.display()
    );
    Ok(())
}
