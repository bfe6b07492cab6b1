//! `hardway store verify`: re-hash every store path against its sidecar; `--repair` removes what is corrupt
//! and rebuilds it for the recipes given.

use std::path::PathBuf;

use crate::engine::scheduler::{Silent, realise};
use crate::engine::store::{PathState, Store};

/// Work on the store itself.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand)]
enum StoreCommand {
    Verify(VerifyArgs),
}

/// Re-hash every store path against the hash recorded when it was built; report each corrupt or incomplete one.
///
/// With --repair: remove each such path, then rebuild it for the recipes given (paths no recipe plans are
/// only removed). Exit status 1 when a corrupt path was found (and not repaired).
/// Example: hardway store verify --repair recipes/seed.toml
#[derive(clap::Args)]
struct VerifyArgs {
    /// Recipes whose derivations --repair rebuilds.
    recipes: Vec<PathBuf>,
    #[command(flatten)]
    store: super::StoreArgs,
    #[command(flatten)]
    seed: super::SeedArgs,
    /// Remove corrupt paths and rebuild them for the recipes given.
    #[arg(long)]
    repair: bool,
}

pub fn run(args: Args) -> anyhow::Result<bool> {
    let StoreCommand::Verify(a) = args.command;
    let project = super::project::Project::of_recipes(&a.recipes);
    let store = Store::open(&a.store.path(&project)?)?;
    let names = store.list()?;
    let mut bad = Vec::new();
    for name in &names {
        match store.check_path(name)? {
            PathState::Intact => {}
            state => {
                let why = match state {
                    PathState::Corrupt => {
                        "corrupt: its files do not match the hash recorded when it was built"
                    }
                    _ => "incomplete: its record (.drv sidecar) is missing or unreadable",
                };
                eprintln!("hardway: {name}: {why}");
                bad.push(name.clone());
            }
        }
    }
    println!(
        "checked {} store paths: {} corrupt or incomplete",
        names.len(),
        bad.len()
    );
    if bad.is_empty() {
        return Ok(true);
    }
    if !a.repair {
        eprintln!(
            "hardway: run `hardway store verify --repair RECIPE...` to remove and rebuild them"
        );
        return Ok(false);
    }
    // Every recipe and its seed first: a bad one must fail before anything is removed.
    let loaded: Vec<(&PathBuf, super::Loaded)> = a
        .recipes
        .iter()
        .map(|recipe| {
            let target = super::TargetArgs {
                recipe: recipe.clone(),
                seed: a.seed.clone(),
                store: a.store.clone(),
            };
            target.load().map(|l| (recipe, l))
        })
        .collect::<anyhow::Result<_>>()?;
    let registry = crate::plan::registry()?;
    for name in &bad {
        store.remove(name)?;
        println!("removed {name}");
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (recipe, l) in &loaded {
        let s = realise(&l.plan, &l.store, &l.seed, &registry, jobs, &Silent)?;
        println!("{}: rebuilt {}", recipe.display(), s.built);
    }
    Ok(true)
}
