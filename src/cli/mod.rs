//! The command line: clap definitions in one place, one file per subcommand.

mod build;
mod init;
mod show;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Reproducible builds of Kubernetes-the-hard-way clusters.
///
/// A recipe (TOML) plus one secret seed gives byte-identical certificates, kubeconfigs, configs and per-host
/// bundles, realised once into a content-addressed store.
///
/// Examples:
///   hardway build recipes/seed.toml        # plan, build, link results under out/
///   hardway show recipes/seed.toml         # list derivations and whether each is built
///   hardway init --seed-file secrets/seed  # make a new secret seed
///
/// Exit codes: 0 success, 1 error (bad recipe, missing seed, build failure), 2 usage error.
#[derive(Parser)]
#[command(name = "hardway", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Init(init::Args),
    Build(build::Args),
    Show(show::Args),
}

/// Options shared by commands that read the seed.
#[derive(clap::Args, Clone)]
pub struct SeedArgs {
    /// The secret seed (32 bytes, mode 0600).
    #[arg(long, env = "HARDWAY_SEED_FILE", default_value = "secrets/seed")]
    pub seed_file: PathBuf,
}

/// Options shared by commands that use the store.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// The content-addressed store.
    #[arg(long, env = "HARDWAY_STORE", default_value = "store")]
    pub store: PathBuf,
}

/// Parses the arguments and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Init(a) => init::run(a),
        Command::Build(a) => build::run(a),
        Command::Show(a) => show::run(a),
    }
}

/// Loads and validates a recipe; its error already names file, line, column and field.
fn load_recipe(path: &std::path::Path) -> anyhow::Result<crate::recipe::Recipe> {
    crate::recipe::Recipe::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}
