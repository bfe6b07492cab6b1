//! `hardway show`: the planned derivations, their hashes and whether each is built.

use std::path::PathBuf;

use crate::plan::Plan;
use crate::seed::Seed;
use crate::store::Store;

/// List the derivations a recipe plans, with store paths and whether each is built.
///
/// Example: hardway show recipes/seed.toml
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (TOML).
    recipe: PathBuf,
    #[command(flatten)]
    seed: super::SeedArgs,
    #[command(flatten)]
    store: super::StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let recipe = super::load_recipe(&args.recipe)?;
    let seed = Seed::load(&args.seed.seed_file)?;
    let plan = Plan::new(&recipe, seed.fingerprint())?;
    let store = Store::open(&args.store.store)?;
    let mut out = String::new();
    for node in &plan.nodes {
        let state = if store.is_built(&node.store_name) {
            "built  "
        } else {
            "missing"
        };
        out.push_str(&format!("{state} {}\n", node.store_name));
    }
    print!("{out}");
    Ok(())
}
