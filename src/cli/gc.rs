//! `hardway gc`: remove store paths that no recipe given and no `out/` link reaches.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::engine::store::Store;

/// Remove store paths that no recipe given on the command line and no link in --out reaches.
///
/// Every derivation a recipe plans is kept (inputs included), and every store path an `out/` link points
/// into, with its inputs (read from the sidecars). Prints what it removes (or would, with --dry-run) and the bytes freed.
/// Example: hardway gc recipes/seed.toml --dry-run
#[derive(clap::Args)]
pub struct Args {
    /// Recipes whose store paths are kept.
    recipes: Vec<PathBuf>,
    #[command(flatten)]
    store: super::StoreArgs,
    #[command(flatten)]
    seed: super::SeedArgs,
    /// Links into the store found here are kept too.
    #[command(flatten)]
    out: super::OutArgs,
    /// Only print what would be removed.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let project = super::project::Project::of_recipes(&args.recipes);
    let store = Store::open(&args.store.path(&project)?)?;
    let mut keep = BTreeSet::new();
    for recipe in &args.recipes {
        let target = super::TargetArgs {
            recipe: recipe.clone(),
            seed: args.seed.clone(),
            store: args.store.clone(),
        };
        let loaded = target.load_public()?;
        keep.extend(loaded.plan.nodes.iter().map(|n| n.store_name.clone()));
    }
    if let Ok(dir) = std::fs::read_dir(args.out.path(&project)?) {
        for e in dir.flatten() {
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            if let Ok(rel) = target.strip_prefix(store.root())
                && let Some(first) = rel.components().next()
            {
                keep.insert(first.as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    // An out/ link keeps its path's whole closure (its inputs, theirs, ...), as a Nix GC root does.
    let names = store.list()?;
    let by_hash: std::collections::BTreeMap<&str, &String> = names
        .iter()
        .filter_map(|n| n.split_once('-').map(|(h, _)| (h, n)))
        .collect();
    let mut todo: Vec<String> = keep.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        if !store.path(&name).is_dir() {
            continue;
        }
        for h in store.references(&name).unwrap_or_default() {
            if let Some(r) = by_hash.get(h.as_str())
                && keep.insert((*r).clone())
            {
                todo.push((*r).clone());
            }
        }
    }
    let mut freed = 0u64;
    let mut removed = 0usize;
    for name in &names {
        if keep.contains(name) {
            continue;
        }
        let size: u64 = walkdir::WalkDir::new(store.path(name))
            .into_iter()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        freed += size;
        removed += 1;
        if args.dry_run {
            println!("would remove {name} ({size} bytes)");
        } else {
            store.remove(name)?;
            println!("removed {name} ({size} bytes)");
        }
    }
    println!(
        "{} {removed} store paths, {freed} bytes; kept {}",
        if args.dry_run { "would free" } else { "freed" },
        keep.len()
    );
    Ok(())
}
