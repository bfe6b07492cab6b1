//! `hardway init`: make a new secret seed.

use crate::engine::seed::Seed;

/// Make a new 32-byte secret seed from the OS RNG (mode 0600). Never overwrites an existing seed.
///
/// Back the seed up: every key of the cluster derives from it.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    seed: super::SeedArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let seed = Seed::create(&args.seed.seed_file)?;
    println!(
        "created seed {} (fingerprint {}); back it up: it is the root of every key",
        args.seed.seed_file.display(),
        seed.fingerprint()
    );
    Ok(())
}
