//! `hardway init`: make a directory a project root (`.hardway/`) and give it a new secret seed.

use std::path::PathBuf;

use crate::engine::seed::Seed;

/// Make DIR a project root (.hardway/) with a new secret seed DIR/secrets/seed
///
/// `DIR/.hardway/` is the marker hardway finds a recipe's seed, store and out/ from (as Cargo finds Cargo.toml;
/// commit it); the seed is 32 bytes from the OS RNG, mode 0600.
///
/// Never overwrites: an existing marker is kept; an existing seed is kept and reported (exit 1), never replaced.
/// Back the seed up: every key of the cluster derives from it.
/// Examples:
///   hardway init                # the working directory becomes the project root
///   hardway init --seed-file /secure/seed
///   hardway init --no-seed      # the far side of an air gap: import and push only
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The directory to make a project root.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to create the seed [default: DIR/secrets/seed].
    #[arg(long, env = "HARDWAY_SEED_FILE", conflicts_with = "no_seed")]
    seed_file: Option<PathBuf>,
    /// Only the marker, no seed: for the far side of an air gap, which imports and pushes but never builds.
    #[arg(long)]
    no_seed: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if super::project::mark(&args.dir)? {
        println!(
            "made {} a hardway project root ({}/ created: commit it)",
            args.dir.display(),
            super::project::MARKER
        );
    }
    if args.no_seed {
        return Ok(());
    }
    let path = args
        .seed_file
        .unwrap_or_else(|| args.dir.join("secrets/seed"));
    let seed = Seed::create(&path)?;
    println!(
        "created seed {} (fingerprint {}); back it up: it is the root of every key",
        path.display(),
        seed.fingerprint()
    );
    Ok(())
}
