//! `hardway add`: import files on a disconnected machine, each admitted only if its SHA-256 is a pin.

use std::path::PathBuf;

use crate::engine::store::Store;
use crate::recipe::Recipe;

/// Import downloaded files (release tarballs) into the store by their SHA-256.
///
/// A file is admitted only if its SHA-256 matches a pin of the recipes given with --recipe (default: every
/// recipe under recipes/); a file matching no pin is refused with its hash printed. Example:
///   hardway add etcd-v3.3.5-linux-amd64.tar.gz --recipe recipes/seed.toml
#[derive(clap::Args)]
pub struct Args {
    /// Files to import.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Recipes whose pins are accepted [default: recipes/*.toml under the project root of the working directory].
    #[arg(long)]
    recipe: Vec<PathBuf>,
    #[command(flatten)]
    store: super::StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let project = super::project::Project::of_recipes(&args.recipe);
    let paths = if args.recipe.is_empty() {
        let mut found = Vec::new();
        let dir = project.resolve(None, "recipes", "--recipe")?;
        if let Ok(dir) = std::fs::read_dir(dir) {
            for e in dir.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    found.push(p);
                }
            }
        }
        found.sort();
        found
    } else {
        args.recipe.clone()
    };
    let mut recipes = Vec::new();
    for p in paths {
        let r = Recipe::load(&p).map_err(anyhow::Error::new)?;
        recipes.push((p, r));
    }
    let store = Store::open(&args.store.path(&project)?)?;
    for f in &args.files {
        // The message names the file already.
        let msg = super::sources::add(f, &recipes, &store)?;
        println!("{msg}");
    }
    Ok(())
}
