//! `hardway show`: the planned derivations, their hashes and whether each is built.

/// List the derivations a recipe plans, with store paths and whether each is built.
///
/// Example: hardway show recipes/seed.toml [--json]
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Print the derivations as JSON on stdout: name, builder, version, store path, built.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let public = args.target.load_public()?;
    for note in public.notes() {
        eprintln!("{note}");
    }
    if let Some(other) = public.built_with_other_seed() {
        eprintln!(
            "hardway: the store holds this recipe's derivations built with another seed (fingerprint {other}), \
             not with this one ({}): they are listed as missing for this seed",
            public.fingerprint
        );
    }
    let super::Public { plan, store, .. } = public;
    if args.json {
        let nodes: Vec<serde_json::Value> = plan
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n.drv.name,
                    "builder": n.drv.builder,
                    "builder_version": n.drv.builder_version,
                    "store_path": n.store_name,
                    "built": store.is_built(&n.store_name),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "derivations": nodes }));
        return Ok(());
    }
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
