//! `hardway build`: plan, realise, link the top-level artifacts under `--out`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::engine::scheduler::{Reporter, realise};
use crate::engine::seed::{Seed, SeedError};
use crate::engine::store::Outcome;

/// Build every artifact of a recipe into the store and link the results under --out.
///
/// State is found from the recipe: the nearest ancestor holding `.hardway/` is the project root, and
/// secrets/seed, store/ and out/ are under it unless given. A missing seed is an error unless --init-seed.
/// Example: hardway build recipes/seed.toml -j 4
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Builders to run at once [default: number of CPUs].
    #[arg(short = 'j', long = "jobs")]
    jobs: Option<usize>,
    #[command(flatten)]
    out: super::OutArgs,
    /// Create the seed if there is none (and say so); without it a missing seed is an error.
    #[arg(long)]
    init_seed: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also list every reused store path (built ones are always listed).
    #[arg(short, long)]
    verbose: bool,
    /// Print nothing but errors (and the note when a new seed was created).
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
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
    quiet: bool,
    /// On a terminal (and without -v): one line `[n/m] <name>` instead of a line per derivation.
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter for StderrReporter {
    fn realised(&self, name: &str, store_name: &str, outcome: Outcome, took: Duration) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(name.to_string());
            if outcome != Outcome::Repaired {
                return;
            }
        }
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

/// The note about a seed created by this build: printed last, so it is not lost above the build's output.
static SEED_NOTE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn run(args: Args) -> anyhow::Result<()> {
    let result = build(args);
    if let Some(note) = SEED_NOTE.get() {
        eprintln!("{note}");
    }
    result
}

fn build(args: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let init_seed = args.init_seed;
    let super::Loaded {
        project,
        recipe,
        seed,
        plan,
        store,
    } = args.target.load_with(|p| load_seed(p, init_seed))?;
    let out_dir = args.out.path(&project)?;
    if !args.quiet
        && !args.json
        && let Some(line) = project.describe()
    {
        eprintln!("hardway: {line}");
    }
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
        quiet: args.quiet,
        bar: (!args.quiet && !args.verbose && !args.json && std::io::stderr().is_terminal()).then(
            || {
                let bar = indicatif::ProgressBar::new(plan.nodes.len() as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("[{pos}/{len}] {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            },
        ),
    };
    let registry = crate::plan::registry()?;
    let summary = realise(&plan, &store, &seed, &registry, jobs, &reporter);
    if let Some(bar) = &reporter.bar {
        bar.finish_and_clear();
    }
    let summary = summary?;
    store.save_stats()?;
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
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let targets: Vec<(&str, PathBuf)> = plan
        .roots
        .iter()
        .map(|root| {
            let mut target = store.path(&plan.nodes[root.node].store_name);
            if let Some(file) = &root.file {
                target.push(file);
            }
            (root.link.as_str(), target)
        })
        .collect();
    // out/ is hardway's: refuse, before changing anything, to replace what is not a link into this store.
    let mut current = Vec::with_capacity(targets.len());
    for (name, _) in &targets {
        current.push(ours_or_absent(&out_dir.join(name), store.root())?);
    }
    for ((name, target), now) in targets.iter().zip(current) {
        if now.as_deref() != Some(target.as_path()) {
            link(&out_dir, name, target)?;
        }
    }
    remove_stale_links(&out_dir, store.root(), &targets)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let links = plan.roots.len();
    // The one clock read of a build: it only warns, and never reaches an output.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let warnings = validity_warnings(&recipe, now, &args.target.recipe);
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
        if !args.quiet {
            println!(
                "built {}, reused {}{fetched} in {ms:.1} ms; {} links in {}",
                summary.built,
                summary.reused,
                links,
                out_dir.display()
            );
            hosts_table(&recipe, &lock, &out_dir, &args.target.recipe);
        }
    }
    if !args.quiet {
        for w in &warnings {
            eprintln!("hardway: warning: {w}");
        }
    }
    Ok(())
}

/// The recipe's two validity windows, both from `issue_date`: (what, hours, end in Unix seconds).
pub(super) fn validity_windows(recipe: &crate::recipe::Recipe) -> [(&'static str, u64, i64); 2] {
    let start = recipe.cluster.issue_date;
    [
        ("the CA", recipe.pki.ca_validity_hours),
        (
            "the leaf certificates (admin, kubernetes, each worker's, …)",
            recipe.pki.validity_hours,
        ),
    ]
    .map(|(what, hours)| (what, hours, start + (hours as i64) * 3600))
}

/// Certificates that are expired, not yet valid, or expire within 30 days of `now`, one line per validity
/// window: every window comes from the recipe (the CA's and the leaves', both from `issue_date`).
fn validity_warnings(recipe: &crate::recipe::Recipe, now: i64, recipe_path: &Path) -> Vec<String> {
    let day = crate::recipe::civil_date;
    let start = recipe.cluster.issue_date;
    let fix = format!(
        "`hardway renew {}` sets a new [cluster] issue_date; then rebuild",
        recipe_path.display()
    );
    let mut out = Vec::new();
    for (what, _, end) in validity_windows(recipe) {
        if now < start {
            out.push(format!(
                "{what}: not valid before {} (today is {}): clients will refuse it; {fix}",
                day(start),
                day(now)
            ));
        } else if now >= end {
            out.push(format!("{what}: expired on {}; {fix}", day(end)));
        } else if end - now < 30 * 86_400 {
            out.push(format!(
                "{what}: expires on {}, within 30 days; {fix}",
                day(end)
            ));
        }
    }
    out
}

/// Where the user stands: each host's bundle, and the commands that come next.
fn hosts_table(
    recipe: &crate::recipe::Recipe,
    lock: &crate::ops::lock::Lock,
    out: &Path,
    recipe_path: &Path,
) {
    let mut rows = vec![(
        "host".to_string(),
        "role".to_string(),
        "ip".to_string(),
        "bundle".to_string(),
        "size".to_string(),
    )];
    for h in &recipe.hosts {
        let size = lock
            .bundles
            .get(&h.name)
            .map_or_else(String::new, |d| human_size(d.size));
        rows.push((
            h.name.clone(),
            h.role.name().to_string(),
            h.ip.to_string(),
            out.join(format!("{}.tar.gz", h.name)).display().to_string(),
            size,
        ));
    }
    let w = |f: fn(&(String, String, String, String, String)) -> &String| {
        rows.iter().map(|r| f(r).len()).max().unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (w(|r| &r.0), w(|r| &r.1), w(|r| &r.2), w(|r| &r.3));
    for r in &rows {
        println!(
            "  {:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r.0, r.1, r.2, r.3, r.4
        );
    }
    let r = recipe_path.display();
    println!(
        "next: hardway check {r}    # audit the build\n      hardway push {r}     # install each bundle on its host"
    );
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The seed; with `--init-seed`, created (loudly) when missing.
fn load_seed(path: &Path, init: bool) -> anyhow::Result<Seed> {
    match Seed::load(path) {
        Ok(s) => Ok(s),
        Err(SeedError::Missing(path)) if !init => anyhow::bail!(
            "no seed at {}: build creates none by itself; run `hardway init` in the project's top directory, \
             or `hardway build --init-seed RECIPE`, or point --seed-file / HARDWAY_SEED_FILE at yours",
            path.display()
        ),
        Err(SeedError::Missing(path)) => {
            let s = Seed::create(&path)?;
            let _ = SEED_NOTE.set(format!(
                "hardway: NOTE: created a new secret seed at {} (fingerprint {}).\n\
                 hardway: BACK IT UP: it is the root of every key; losing it means a new CA for the cluster.",
                path.display(),
                s.fingerprint()
            ));
            Ok(s)
        }
        Err(e) => Err(e.into()),
    }
}

/// Fails unless `path` is absent or a symbolic link into the store (a link of an earlier build); returns where
/// that link points.
pub(super) fn ours_or_absent(path: &Path, store: &Path) -> anyhow::Result<Option<PathBuf>> {
    // One readlink in the common case (a link of the last build); only an error needs a closer look.
    let target = match std::fs::read_link(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return match std::fs::symlink_metadata(path) {
                Ok(m) if !m.file_type().is_symlink() => anyhow::bail!(
                    "{} exists and is not a hardway link: nothing in out/ was changed; move it away, or use \
                     another --out",
                    path.display()
                ),
                _ => Err(e).with_context(|| format!("reading {}", path.display())),
            };
        }
    };
    if target.starts_with(store) {
        Ok(Some(target))
    } else {
        anyhow::bail!(
            "{} links to {}, outside the store {}: not hardway's, so nothing in out/ was changed; move it \
             away, or use another --out",
            path.display(),
            target.display(),
            store.display()
        )
    }
}

/// Removes links in `out` into the store that the current build does not make (a removed host's bundle, …).
/// Anything else there is left alone.
fn remove_stale_links(out: &Path, store: &Path, current: &[(&str, PathBuf)]) -> anyhow::Result<()> {
    let keep: std::collections::BTreeSet<&str> = current.iter().map(|(n, _)| *n).collect();
    for e in std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let e = e.with_context(|| format!("reading {}", out.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if keep.contains(name.as_str()) || !e.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        if std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(store)) {
            std::fs::remove_file(e.path())
                .with_context(|| format!("removing the stale link {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Points `out/<name>` at `target`, replacing an older link atomically.
pub(super) fn link(out: &Path, name: &str, target: &Path) -> anyhow::Result<()> {
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
