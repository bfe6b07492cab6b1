//! `hardway fetch`: download every pinned source of a recipe into the store (on a connected machine).

use std::path::PathBuf;

use crate::engine::store::Store;
use crate::recipe::Recipe;

/// Download every source the recipe pins (release tarballs) into the store, checked by SHA-256.
///
/// Needs no seed. Sources already in the store are not downloaded again. Example:
///   hardway fetch recipes/seed.toml
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (TOML).
    recipe: PathBuf,
    #[command(flatten)]
    store: super::StoreArgs,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let recipe = Recipe::load(&args.recipe).map_err(anyhow::Error::new)?;
    let project = super::project::Project::of_recipe(&args.recipe);
    let store = Store::open(&args.store.path(&project)?)?;
    let n = super::sources::ensure(&recipe, &args.recipe, None, &store, false, args.quiet)?;
    let total = crate::artifacts::sources(&recipe).len();
    println!("{total} sources in the store ({n} downloaded)");
    Ok(())
}
