//! The command line: clap definitions in one place, one file per subcommand.

mod add;
mod build;
mod check;
mod export;
mod fetch;
mod gc;
mod import;
mod init;
mod keygen;
pub mod project;
mod push;
mod renew;
mod show;
mod sources;
mod store;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Reproducible builds of Kubernetes-the-hard-way clusters.
///
/// A recipe (TOML) plus one secret seed gives byte-identical certificates, kubeconfigs, configs and per-host
/// bundles, realised once into a content-addressed store.
///
/// Examples:
///   hardway build recipes/seed.toml        # plan, build, link results under out/ (state: see `init`)
///   hardway show recipes/seed.toml         # list derivations and whether each is built
///   hardway check recipes/seed.toml        # audit the build (chain, names, SANs, least privilege)
///   hardway renew recipes/seed.toml --date 2027-11-01   # a new issue_date in place; lists what re-issues
///   hardway fetch recipes/seed.toml        # download the pinned sources (etcd) into the store
///   hardway add etcd-v3.3.5-linux-amd64.tar.gz --recipe recipes/seed.toml   # import one by its hash
///   hardway export recipes/seed.toml -o cluster.hwx                     # signed archive for an air gap
///   hardway import cluster.hwx --public-key cluster.hwx.pub             # on the far side: no seed needed
///   hardway init                           # make this directory a project (.hardway/) with a new seed
///   hardway keygen --algorithm rsa-2048 --seed-hex 00112233445566778899aabbccddeeff
///
/// Exit codes: 0 success, 1 error (bad recipe, missing seed, build failure, check found errors), 2 usage error.
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
    Keygen(keygen::Args),
    Check(check::Args),
    Fetch(fetch::Args),
    Add(add::Args),
    Verify(verify::Args),
    Store(store::Args),
    Gc(gc::Args),
    Push(push::Args),
    Export(export::Args),
    Import(import::Args),
    Renew(renew::Args),
}

/// Options shared by commands that read the seed.
#[derive(clap::Args, Clone)]
pub struct SeedArgs {
    /// The secret seed (32 bytes, mode 0600) [default: secrets/seed under the project root].
    #[arg(long, env = "HARDWAY_SEED_FILE")]
    pub seed_file: Option<PathBuf>,
}

impl SeedArgs {
    /// `--seed-file`, else `secrets/seed` under the project root.
    pub fn path(&self, project: &project::Project) -> anyhow::Result<PathBuf> {
        project.resolve(
            self.seed_file.as_deref(),
            "secrets/seed",
            "--seed-file (or HARDWAY_SEED_FILE)",
        )
    }
}

/// Options shared by commands that use the store.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// The content-addressed store [default: store/ under the project root].
    #[arg(long, env = "HARDWAY_STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// `--store`, else `store` under the project root.
    pub fn path(&self, project: &project::Project) -> anyhow::Result<PathBuf> {
        project.resolve(self.store.as_deref(), "store", "--store (or HARDWAY_STORE)")
    }
}

/// Options shared by commands that read or write `out/`.
#[derive(clap::Args, Clone)]
pub struct OutArgs {
    /// Where the top-level artifacts are linked (hardway's: only its links are replaced or removed)
    /// [default: out/ under the project root].
    #[arg(long, env = "HARDWAY_OUT")]
    pub out: Option<PathBuf>,
}

impl OutArgs {
    /// `--out`, else `out` under the project root.
    pub fn path(&self, project: &project::Project) -> anyhow::Result<PathBuf> {
        project.resolve(self.out.as_deref(), "out", "--out (or HARDWAY_OUT)")
    }
}

/// The error as the JSON object `--json` callers get on stdout:
/// `{"error": {"kind", "message", "file", "line", "exit"}}` (file and line for a recipe error, else null).
pub fn error_json(e: &anyhow::Error, message: &str) -> String {
    let recipe = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::recipe::RecipeError>());
    let kind = if recipe.is_some() {
        "recipe"
    } else if e.chain().any(|c| c.is::<verify::CannotVerify>()) {
        "cannot-verify"
    } else if e
        .chain()
        .any(|c| c.is::<crate::engine::store::StoreError>())
    {
        "store"
    } else {
        "error"
    };
    let (file, line) = match recipe {
        Some(r) => (
            serde_json::Value::String(r.file.display().to_string()),
            r.problems
                .first()
                .filter(|p| p.line > 0)
                .map_or(serde_json::Value::Null, |p| p.line.into()),
        ),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    };
    serde_json::json!({"error": {
        "kind": kind,
        "message": message,
        "file": file,
        "line": line,
        "exit": exit_code(e),
    }})
    .to_string()
}

/// The exit status for an error: 3 when `verify` could not compare (I/O, missing source), else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<verify::CannotVerify>()) {
        3
    } else {
        1
    }
}

/// Parses the arguments and runs the command. `Ok(false)`: the command ran and found problems (exit 1).
pub fn run() -> anyhow::Result<bool> {
    let cli = Cli::parse();
    match cli.command {
        Command::Init(a) => init::run(a).map(|()| true),
        Command::Build(a) => build::run(a).map(|()| true),
        Command::Show(a) => show::run(a).map(|()| true),
        Command::Keygen(a) => keygen::run(a).map(|()| true),
        Command::Check(a) => check::run(a),
        Command::Fetch(a) => fetch::run(a).map(|()| true),
        Command::Add(a) => add::run(a).map(|()| true),
        Command::Push(a) => push::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Store(a) => store::run(a),
        Command::Gc(a) => gc::run(a).map(|()| true),
        Command::Export(a) => export::run(a).map(|()| true),
        Command::Import(a) => import::run(a).map(|()| true),
        Command::Renew(a) => renew::run(a).map(|()| true),
    }
}

/// The recipe, seed and store a command works on.
#[derive(clap::Args, Clone)]
pub struct TargetArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    #[command(flatten)]
    pub seed: SeedArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where a command's seed fingerprint came from.
pub enum FingerprintFrom {
    Seed(PathBuf),
    /// The recipe's lock: no secret was read.
    Lock(PathBuf),
}

/// A validated recipe, its plan and the open store, planned from the seed's fingerprint alone.
pub struct Public {
    pub project: project::Project,
    pub recipe: crate::recipe::Recipe,
    pub plan: crate::engine::graph::Graph,
    pub store: crate::engine::store::Store,
    pub fingerprint: crate::engine::seed::Fingerprint,
    pub from: FingerprintFrom,
    /// The fingerprint the recipe's lock records, if there is a lock.
    pub lock_fingerprint: Option<crate::engine::seed::Fingerprint>,
}

impl Public {
    /// One line saying where the fingerprint came from when it was not the seed, and when the lock's build used
    /// another seed than the one given; for stderr.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let FingerprintFrom::Lock(lock) = &self.from {
            notes.push(format!(
                "hardway: no seed here: planned with the seed fingerprint {} recorded in {} (no secret read)",
                self.fingerprint,
                lock.display()
            ));
        }
        if let (FingerprintFrom::Seed(seed), Some(fp)) = (&self.from, self.lock_fingerprint)
            && fp != self.fingerprint
        {
            notes.push(format!(
                "hardway: the seed {} (fingerprint {}) is not the one this recipe's lock was built with \
                 (fingerprint {fp}): what was built with that seed is not this seed's build",
                seed.display(),
                self.fingerprint
            ));
        }
        notes
    }

    /// When planned paths are missing but the store holds paths of the same derivations made with another seed
    /// (seed-independent ones, such as sources, may well be built): that seed's fingerprint, from the sidecars.
    pub fn built_with_other_seed(&self) -> Option<String> {
        let missing: Vec<&crate::engine::graph::Node> = self
            .plan
            .nodes
            .iter()
            .filter(|n| !self.store.is_built(&n.store_name))
            .collect();
        if missing.is_empty() {
            return None;
        }
        let names = self.store.list().ok()?;
        for node in missing {
            for other in names.iter().filter(|n| {
                n.split_once('-')
                    .is_some_and(|(_, name)| name == node.drv.name)
            }) {
                let seed = self
                    .store
                    .recorded(other)
                    .ok()
                    .flatten()
                    .and_then(|r| r.param("seed"))
                    .and_then(|s| s.as_bytes().cloned())
                    .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
                if let Some(seed) = seed
                    && seed != *self.fingerprint.as_bytes()
                {
                    return Some(crate::engine::seed::Fingerprint::from_bytes(seed).to_string());
                }
            }
        }
        None
    }
}

/// A validated recipe, its seed, its plan and the open store.
pub struct Loaded {
    pub project: project::Project,
    pub recipe: crate::recipe::Recipe,
    pub seed: crate::engine::seed::Seed,
    pub plan: crate::engine::graph::Graph,
    pub store: crate::engine::store::Store,
}

impl TargetArgs {
    /// Loads in the order that writes nothing for a bad recipe or seed: recipe, seed (through `seed`, which
    /// may create it), plan, then the store.
    pub fn load_with(
        &self,
        seed: impl FnOnce(&std::path::Path) -> anyhow::Result<crate::engine::seed::Seed>,
    ) -> anyhow::Result<Loaded> {
        let recipe = crate::recipe::Recipe::load(&self.recipe).map_err(anyhow::Error::new)?;
        let project = project::Project::of_recipe(&self.recipe);
        let seed = seed(&self.seed.path(&project)?)?;
        let plan = crate::plan::plan(&recipe, seed.fingerprint())?;
        let store = crate::engine::store::Store::open(&self.store.path(&project)?)?;
        Ok(Loaded {
            project,
            recipe,
            seed,
            plan,
            store,
        })
    }

    /// The recipe, plan and store with only the seed's fingerprint, for commands that read (show, check): from
    /// the seed if it is there (or given), else from the recipe's lock, so an auditor needs no secret.
    pub fn load_public(&self) -> anyhow::Result<Public> {
        use crate::engine::seed::{Fingerprint, Seed, SeedError};
        let recipe = crate::recipe::Recipe::load(&self.recipe).map_err(anyhow::Error::new)?;
        let project = project::Project::of_recipe(&self.recipe);
        let seed_path = self.seed.path(&project)?;
        let lock_path = crate::ops::lock::lock_path(&self.recipe);
        // The lock is needed only without the seed: with the seed, a damaged lock is a note, not a failure.
        let lock = crate::ops::lock::Lock::read(&lock_path);
        let lock_fp = match &lock {
            Ok(Some(l)) => crate::formats::hex::unhex::<32>(&l.seed).map(Fingerprint::from_bytes),
            _ => None,
        };
        let (fingerprint, from) = match Seed::load(&seed_path) {
            Ok(s) => {
                if let Err(e) = &lock {
                    eprintln!("hardway: note: {e} (not needed with the seed)");
                }
                (s.fingerprint(), FingerprintFrom::Seed(seed_path))
            }
            Err(SeedError::Missing(_)) if self.seed.seed_file.is_none() => match lock_fp {
                Some(fp) => (fp, FingerprintFrom::Lock(lock_path.clone())),
                None => {
                    lock?;
                    anyhow::bail!(
                        "no seed at {} and no lock {}: the seed's fingerprint is needed to know the store paths; \
                     build once (it writes the lock), or give --seed-file (see `hardway init`)",
                        seed_path.display(),
                        lock_path.display()
                    )
                }
            },
            Err(e) => return Err(e.into()),
        };
        let plan = crate::plan::plan(&recipe, fingerprint)?;
        let store = crate::engine::store::Store::open(&self.store.path(&project)?)?;
        Ok(Public {
            project,
            recipe,
            plan,
            store,
            fingerprint,
            from,
            lock_fingerprint: lock_fp,
        })
    }

    /// As [`TargetArgs::load_with`], with a seed that must exist.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        self.load_with(|path| Ok(crate::engine::seed::Seed::load(path)?))
    }
}

/// Writes a public file (mode 0644) atomically; `replace`: an existing file is replaced, else it is an error.
pub fn write_public(dest: &std::path::Path, bytes: &[u8], replace: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::engine::atomic::write_file(dest, bytes, 0o644, replace)
        .with_context(|| format!("writing {}", dest.display()))
}
