//! `hardway build`: plan, realise, link the top-level artifacts under `--out`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::engine::scheduler::{Reporter, realise};
use crate::engine::seed::{Seed, SeedError};
use crate::engine::store::Outcome;

/// Build every artifact of a recipe into the store and link the results under --out.
///
/// Creates the seed on first use (and says so). Example: hardway build recipes/seed.toml -j 4
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Builders to run at once [default: number of CPUs].
    #[arg(short = 'j', long = "jobs")]
    jobs: Option<usize>,
    /// Where to leave one link per top-level artifact.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also list every reused store path (built ones are always listed).
    #[arg(short, long)]
    verbose: bool,
    /// Never use the network: fail before building anything if a pinned source is not in the store.
    #[arg(long)]
    offline: bool,
    /// Re-hash every store path before reusing it; a corrupt one is reported and rebuilt.
    #[arg(long)]
    check_store: bool,
    /// Fail, before linking anything, if the outputs differ from the recipe's lock (RECIPE with `.lock`);
    /// the lock is then left as it is. Without it, the lock is (re)written after each build.
    #[arg(long)]
    locked: bool,
}

struct StderrReporter {
    verbose: bool,
}

impl Reporter for StderrReporter {
    fn realised(&self, _name: &str, store_name: &str, outcome: Outcome, took: Duration) {
        let word = match outcome {
            Outcome::Built => "built",
            Outcome::Repaired => "CORRUPT in the store (files changed or missing), rebuilt:",
            Outcome::Reused if self.verbose => "reused",
            Outcome::Reused => return,
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{word} {store_name} ({:.1} ms)",
            took.as_secs_f64() * 1e3
        );
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let super::Loaded {
        recipe,
        seed,
        plan,
        store,
    } = args.target.load_with(load_or_create_seed)?;
    let store = store.checking(args.check_store);
    let fetched = super::sources::ensure(
        &recipe,
        &args.target.recipe,
        Some(&plan),
        &store,
        args.offline,
        args.json,
    )?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let reporter = StderrReporter {
        verbose: args.verbose,
    };
    let registry = crate::plan::registry()?;
    let summary = realise(&plan, &store, &seed, &registry, jobs, &reporter)?;
    let lock_file = crate::ops::lock::lock_path(&args.target.recipe);
    let lock = crate::ops::lock::Lock::of(&plan, &store, seed.fingerprint())?;
    if args.locked {
        let Some(locked) = crate::ops::lock::Lock::read(&lock_file)? else {
            anyhow::bail!(
                "--locked: there is no lock {} (build once without --locked to write it, and commit it)",
                lock_file.display()
            );
        };
        let diff = locked.differences(&lock);
        if !diff.is_empty() {
            anyhow::bail!(
                "--locked: the build differs from {} (nothing was linked; the lock is unchanged):\n  {}",
                lock_file.display(),
                diff.join("\n  ")
            );
        }
    } else if crate::ops::lock::Lock::read(&lock_file)
        .ok()
        .flatten()
        .as_ref()
        != Some(&lock)
    {
        lock.write(&lock_file)?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for root in &plan.roots {
        let mut target = store.path(&plan.nodes[root.node].store_name);
        if let Some(file) = &root.file {
            target.push(file);
        }
        link(&args.out, &root.link, &target)?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let links = plan.roots.len();
    // The process ends next: freeing thousands of small parameter trees would only cost time.
    std::mem::forget(plan);
    if args.json {
        println!(
            "{{\"built\":{},\"reused\":{},\"repaired\":{},\"fetched\":{fetched},\"links\":{},\"milliseconds\":{ms:.3},\"peak_rss_kib\":{}}}",
            summary.built,
            summary.reused,
            summary.repaired,
            links,
            peak_rss_kib()
        );
    } else {
        let fetched = if fetched > 0 {
            format!(", fetched {fetched} sources")
        } else {
            String::new()
        };
        println!(
            "built {}, reused {}{fetched} in {ms:.1} ms; {} links in {}",
            summary.built,
            summary.reused,
            links,
            args.out.display()
        );
    }
    Ok(())
}

/// The seed, created (loudly) on first use.
fn load_or_create_seed(path: &Path) -> anyhow::Result<Seed> {
    match Seed::load(path) {
        Ok(s) => Ok(s),
        Err(SeedError::Missing(path)) => {
            let s = Seed::create(&path)?;
            eprintln!(
                "hardway: NOTE: created a new secret seed at {} (fingerprint {}).\n\
                 hardway: BACK IT UP: it is the root of every key; losing it means a new CA for the cluster.",
                path.display(),
                s.fingerprint()
            );
            Ok(s)
        }
        Err(e) => Err(e.into()),
    }
}

/// Points `out/<name>` at `target`, replacing an older link atomically.
fn link(out: &Path, name: &str, target: &Path) -> anyhow::Result<()> {
    let path = out.join(name);
    match std::fs::read_link(&path) {
        Ok(t) if t == target => return Ok(()),
        Ok(_) => {}
        Err(_) => match std::os::unix::fs::symlink(target, &path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("linking {}", path.display())),
        },
    }
    let tmp = out.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("linking {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("linking {}", path.display()))?;
    Ok(())
}

/// The process's peak resident memory (VmHWM), 0 where /proc is not available.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
