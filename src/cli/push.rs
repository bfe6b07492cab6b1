//! `hardway push`: parse the arguments, run [`crate::ops::push`], print each host's report and a summary.

use std::io::Write;
use std::path::PathBuf;

use crate::ops::push::{self, HostReport, Mode, Options, Outcome};

/// Install each host's bundle (out/<host>.tar.gz) on the host over SSH, one transaction per host
///
/// Uses the system's ssh (your ~/.ssh/config, agent, ProxyJump and known_hosts; unknown host keys are refused,
/// never accepted). Each host is reached at its recipe `ssh = "user@address:port"`, else root@<ip>:22. Only POSIX
/// sh, GNU tar, gzip and coreutils are needed on the target; nothing is installed there. Pushing the same bundle
/// again changes nothing; files changed by hand on a host are reported as drift and overwritten.
///
/// Examples:
///   hardway push recipes/seed.toml                    # every host, up to 8 at once, masters one by one
///   hardway push recipes/seed.toml node1 --dry-run    # what would change on node1 (and any drift)
///   hardway push recipes/seed.toml node1 --rollback   # back to node1's previous generation
///
/// Exit status: 0 when every host succeeded, 1 when any failed (or was skipped after a failure), 2 usage.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The recipe (TOML): the hosts, their addresses and roles. No seed or store is needed.
    recipe: PathBuf,
    /// Hosts to push, by recipe name, in this order [default: every host, in recipe order].
    hosts: Vec<String>,
    /// Connect, compare, print what would be added, changed or removed, and change nothing.
    #[arg(long, conflicts_with = "rollback")]
    dry_run: bool,
    /// Hosts at once.
    #[arg(short = 'j', long = "jobs", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// After a host fails, go on starting the others (default: start no new host).
    #[arg(long)]
    keep_going: bool,
    /// Push masters at the same time (default: one master at a time).
    #[arg(long)]
    parallel_masters: bool,
    /// The directory on the target that the bundle's paths are under.
    #[arg(long, default_value = "/")]
    root: String,
    /// An ssh_config file for ssh (`ssh -F FILE`) instead of ~/.ssh/config.
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Run the target program through `sudo -n /bin/sh` (for a non-root ssh user; see the README).
    #[arg(long)]
    sudo: bool,
    /// Switch the named hosts back to the generation before their current one (kept on each host).
    #[arg(long, requires = "hosts")]
    rollback: bool,
    /// Where `hardway build` (or `import`) left the bundles and manifests.
    #[command(flatten)]
    out: super::OutArgs,
}

/// Tests only: send bundles without verifying them here first, to show that the target refuses bad ones.
const SKIP_LOCAL_VERIFY: &str = "HARDWAY_PUSH_SKIP_LOCAL_VERIFY";

pub fn run(args: Args) -> anyhow::Result<bool> {
    let recipe = crate::recipe::Recipe::load(&args.recipe).map_err(anyhow::Error::new)?;
    let mode = if args.rollback {
        Mode::Rollback
    } else if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Push
    };
    let skip_verify = std::env::var(SKIP_LOCAL_VERIFY).as_deref() == Ok("1");
    if skip_verify {
        eprintln!(
            "hardway: WARNING: {SKIP_LOCAL_VERIFY}=1: bundles are sent without local verification (a test hook)"
        );
    }
    let opts = Options {
        mode,
        out: args
            .out
            .path(&super::project::Project::of_recipe(&args.recipe))?,
        root: args.root,
        ssh_config: args.ssh_config,
        sudo: args.sudo,
        jobs: args.jobs as usize,
        keep_going: args.keep_going,
        parallel_masters: args.parallel_masters,
        verify_locally: !skip_verify,
    };
    let plans = push::plan(&recipe, &args.hosts, &opts)?;
    let json = args.json;
    let reports = push::push_all(&plans, &opts, &|r: &HostReport| {
        if !json {
            print_details(r, mode);
        }
    });
    let failed = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed | Outcome::Skipped))
        .count();
    if json {
        let hosts: Vec<String> = reports.iter().map(HostReport::json).collect();
        println!(
            "{{\"mode\":{},\"hosts\":[{}],\"failed\":{failed}}}",
            push::json_string(mode.word()),
            hosts.join(",")
        );
    } else {
        print_summary(&reports, mode);
    }
    Ok(failed == 0)
}

/// A host's drift and changes, as it finishes.
fn print_details(r: &HostReport, mode: Mode) {
    let mut out = std::io::stdout().lock();
    for d in &r.drift {
        let then = match mode {
            Mode::DryRun => "a push puts the built one back",
            Mode::Push | Mode::Rollback => "put back",
        };
        let _ = writeln!(out, "{}: drift: {} ({then})", r.host, d.describe_drift());
    }
    let prefix = if mode == Mode::DryRun { "would " } else { "" };
    for c in &r.changes {
        let _ = writeln!(out, "{}: {prefix}{}", r.host, c.describe_change());
    }
    for n in &r.notes {
        let _ = writeln!(out, "{}: note: {n}", r.host);
    }
    let _ = out.flush();
}

fn short(sha: &Option<String>) -> String {
    match sha {
        Some(s) if s.len() >= 12 => s[..12].to_string(),
        _ => "(none)".to_string(),
    }
}

fn print_summary(reports: &[HostReport], mode: Mode) {
    let result = |r: &HostReport| match (r.outcome, r.changes.len()) {
        (Outcome::DryRun, 0) => "no changes".to_string(),
        (Outcome::DryRun, 1) => "would change 1".to_string(),
        (Outcome::DryRun, n) => format!("would change {n}"),
        (o, _) => o.word().to_string(),
    };
    let width = reports
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:width$}  {:27}  {:14}  TIME",
        "HOST", "BUNDLE (OLD → NEW)", "RESULT"
    );
    for r in reports {
        let bundle = match r.outcome {
            Outcome::Skipped => "-".to_string(),
            _ => format!("{:12} → {}", short(&r.old), short(&r.new)),
        };
        let _ = writeln!(
            out,
            "{:width$}  {:27}  {:14}  {:.2} s",
            r.host,
            bundle,
            result(r),
            r.elapsed.as_secs_f64()
        );
    }
    let failed: Vec<&HostReport> = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    for r in &failed {
        if let Some(e) = &r.error {
            let _ = writeln!(out, "{e}");
        }
        for l in &r.stderr_tail {
            let _ = writeln!(out, "  {} stderr | {l}", r.host);
        }
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in reports {
        let w = match r.outcome {
            Outcome::DryRun if r.changes.is_empty() => "without changes",
            Outcome::DryRun => "with changes",
            o => o.word(),
        };
        match counts.iter_mut().find(|(k, _)| k == w) {
            Some((_, n)) => *n += 1,
            None => counts.push((w.to_string(), 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let what = if mode == Mode::DryRun {
        "dry run, nothing changed"
    } else {
        mode.word()
    };
    let _ = writeln!(
        out,
        "{} hosts ({what}): {}",
        reports.len(),
        counts.join(", ")
    );
    if reports.iter().any(|r| r.outcome == Outcome::Skipped) {
        let _ = writeln!(
            out,
            "skipped hosts were not started after a failure; --keep-going pushes them anyway"
        );
    }
}
