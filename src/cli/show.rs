//! `hardway show`: the planned derivations, their hashes and whether each is built.

/// List the derivations a recipe plans, with store paths and whether each is built.
///
/// Example: hardway show recipes/seed.toml
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let super::Loaded { plan, store, .. } = args.target.load()?;
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
