//! `hardway verify`: the command a CI pipeline runs — rebuild from scratch and compare byte for byte.

use std::path::PathBuf;

use anyhow::Context;

use crate::formats::bundle::{Manifest, verify_bundle};
use crate::ops::lock::lock_path;
use crate::ops::verify::{Report, VerifyError, verify};

/// Rebuild everything from scratch into a temporary store and compare it with the store and the lock.
///
/// Names the first derivation (in dependency order) whose output differs, the first differing file in it,
/// and how (tar member and field for a bundle, a short diff for public text, never a secret's bytes).
/// With --bundle and --manifest: check one bundle against its manifest (no seed, no recipe needed).
///
/// Exit codes: 0 identical, 1 differs, 2 usage, 3 I/O error or missing source.
/// Examples:
///   HARDWAY_SEED_FILE=/run/secrets/seed hardway verify recipes/seed.toml --json
///   hardway verify --bundle out/node1.tar.gz --manifest out/node1.manifest
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (TOML); its lock is the same path with `.lock`.
    #[arg(required_unless_present = "bundle")]
    recipe: Option<PathBuf>,
    #[command(flatten)]
    seed: super::SeedArgs,
    #[command(flatten)]
    store: super::StoreArgs,
    /// A bundle to check against --manifest.
    #[arg(long, requires = "manifest", conflicts_with = "recipe")]
    bundle: Option<PathBuf>,
    /// The manifest of --bundle.
    #[arg(long, requires = "bundle")]
    manifest: Option<PathBuf>,
    /// Builders to run at once [default: number of CPUs].
    #[arg(short = 'j', long = "jobs")]
    jobs: Option<usize>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Exit status 3: the comparison could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotVerify(pub String);

pub fn run(args: Args) -> anyhow::Result<bool> {
    if let (Some(bundle), Some(manifest)) = (&args.bundle, &args.manifest) {
        let text = std::fs::read_to_string(manifest)
            .map_err(|e| CannotVerify(format!("{}: {e}", manifest.display())))?;
        let m = Manifest::parse(&text)
            .map_err(|e| CannotVerify(format!("{}: {e}", manifest.display())))?;
        let f = std::fs::File::open(bundle)
            .map_err(|e| CannotVerify(format!("{}: {e}", bundle.display())))?;
        return Ok(match verify_bundle(&m, std::io::BufReader::new(f)) {
            Ok(()) => {
                print(
                    args.json,
                    &format!("{} matches {}", bundle.display(), manifest.display()),
                    true,
                );
                true
            }
            Err(e) => {
                print(args.json, &format!("{}: {e}", bundle.display()), false);
                false
            }
        });
    }
    let Some(recipe_path) = &args.recipe else {
        anyhow::bail!("give a RECIPE, or --bundle and --manifest");
    };
    let target = super::TargetArgs {
        recipe: recipe_path.clone(),
        seed: args.seed.clone(),
        store: args.store.clone(),
    };
    let loaded = target.load()?;
    let registry = crate::plan::registry()?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let scratch = std::env::temp_dir();
    let report = verify(
        &loaded.plan,
        &loaded.store,
        &loaded.seed,
        &registry,
        jobs,
        &scratch,
        &lock_path(recipe_path),
    )
    .map_err(|e| match e {
        VerifyError::MissingSource { .. } | VerifyError::Io { .. } | VerifyError::Store(_) => {
            anyhow::Error::new(CannotVerify(e.to_string()))
        }
        other => anyhow::Error::new(other),
    })
    .context("verify")?;
    if args.json {
        println!("{}", json(&report));
    } else {
        human(&report);
    }
    Ok(report.identical())
}

fn print(json: bool, message: &str, ok: bool) {
    if json {
        println!("{{\"identical\":{ok},\"message\":{}}}", quote(message));
    } else if ok {
        println!("{message}");
    } else {
        eprintln!("hardway: differs: {message}");
    }
}

fn human(r: &Report) {
    match r.differences.first() {
        None => println!(
            "rebuilt {} derivations from scratch: every output is byte-identical to the store{}",
            r.rebuilt,
            if r.not_in_store > 0 {
                format!(" ({} not in the store)", r.not_in_store)
            } else {
                String::new()
            }
        ),
        Some(d) => {
            eprintln!(
                "hardway: differs: first derivation (in dependency order): {} ({})\n  file: {}\n  {}",
                d.derivation,
                d.store_name,
                d.file,
                d.detail.replace('\n', "\n  ")
            );
            if r.differences.len() > 1 {
                let rest: Vec<&str> = r.differences[1..]
                    .iter()
                    .map(|d| d.derivation.as_str())
                    .collect();
                eprintln!("  also differ: {}", rest.join(", "));
            }
        }
    }
    if !r.locked {
        println!("no lock file: run `hardway build RECIPE` to write one, and commit it");
    } else if r.lock.is_empty() {
        println!("the fresh build matches the lock");
    } else {
        eprintln!("hardway: differs from the lock:");
        for l in &r.lock {
            eprintln!("  {l}");
        }
    }
}

fn json(r: &Report) -> String {
    let diffs: Vec<String> = r
        .differences
        .iter()
        .map(|d| {
            format!(
                "{{\"derivation\":{},\"store_path\":{},\"file\":{},\"detail\":{}}}",
                quote(&d.derivation),
                quote(&d.store_name),
                quote(&d.file),
                quote(&d.detail)
            )
        })
        .collect();
    let lock: Vec<String> = r.lock.iter().map(|l| quote(l)).collect();
    format!(
        "{{\"identical\":{},\"rebuilt\":{},\"not_in_store\":{},\"differences\":[{}],\"locked\":{},\"lock_differences\":[{}]}}",
        r.identical(),
        r.rebuilt,
        r.not_in_store,
        diffs.join(","),
        r.locked,
        lock.join(",")
    )
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
