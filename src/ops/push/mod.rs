//! `hardway push`: each host's bundle (`out/<host>.tar.gz` + `.manifest`) onto the host over SSH, installed as
//! one transaction by a short POSIX sh program sent over the same connection ([`ssh::TARGET_PROGRAM`]).
//!
//! Here: the plan of a push (which hosts, which bundle, the ssh argv: [`plan`]), one host's session
//! ([`push_host`]), many hosts in parallel ([`push_all`]); the wire format is in [`protocol`], the transport in
//! [`ssh`]. No seed or store is needed: the bundle is verified against its manifest locally before anything is
//! sent, and again by the target before anything changes there.
//!
//! On the target (`<root>` is `--root`, default `/`; the state lives in `<root>/var/lib/hardway/`):
//! 1. the program compares the files with its receipt (drift: files changed by hand are reported, then
//!    overwritten) and the manifest with the files; if the bundle is the receipt's and nothing differs, it says
//!    `unchanged` and writes nothing;
//! 2. it takes a lock, receives the bundle into `staging.<pid>/` and checks its SHA-256 against the manifest,
//!    lists it (`tar -tvzf`) and refuses links, devices, FIFOs, setuid/setgid members and any name that is not
//!    the manifest's, unpacks it into staging and checks each file's SHA-256 and mode;
//! 3. it creates the new directories (the manifest's mode; existing directories keep their own), places each
//!    new or changed file beside its destination (mode, owner root:root when running as root), keeps the bundle
//!    and manifest as the new generation — until here, a failure or a dropped connection undoes everything;
//! 4. it renames each file into place (signals ignored from now on), removes the files the previous receipt
//!    listed and the new manifest does not (and the now empty directories it had made),
//! 5. writes the receipt (bundle SHA-256, generation, previous generation, every entry) atomically, and keeps
//!    that generation and the previous one for `--rollback`.

pub mod protocol;
pub mod ssh;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::artifacts::bundle::{bundle_file, manifest_file};
use crate::formats::bundle::{BundleError, Manifest, verify_bundle};
use crate::formats::hex::hex;
use crate::recipe::{Recipe, Role, SshTarget};

use protocol::{Finish, Item, Session};

/// What a push does on each host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Install the bundle.
    Push,
    /// Report drift and what a push would change; change nothing.
    DryRun,
    /// Switch back to the generation before the current one, kept on the target.
    Rollback,
}

impl Mode {
    /// The header's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::DryRun => "dry-run",
            Mode::Rollback => "rollback",
        }
    }
}

/// How to push.
#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    /// Where the bundles and manifests are (`build --out`).
    pub out: PathBuf,
    /// The directory on the target the bundle's paths are under.
    pub root: String,
    /// `ssh -F FILE`.
    pub ssh_config: Option<PathBuf>,
    /// Run the target program through `sudo -n`.
    pub sudo: bool,
    /// Hosts at once (at least 1).
    pub jobs: usize,
    /// Go on starting hosts after one failed.
    pub keep_going: bool,
    /// Push masters at the same time as each other (default: one at a time).
    pub parallel_masters: bool,
    /// Verify each bundle against its manifest before connecting. Only tests turn it off, to show that the
    /// target refuses what a broken or malicious client sends.
    pub verify_locally: bool,
}

/// The plan for one host.
#[derive(Clone, Debug)]
pub struct HostPlan {
    pub host: String,
    pub role: Role,
    pub target: SshTarget,
    pub bundle: PathBuf,
    pub manifest: PathBuf,
    /// The ssh command line, program first.
    pub argv: Vec<OsString>,
}

/// Why a push (or one host of it) failed; each names the host.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{host}: not a host of the recipe (its hosts: {known})")]
    UnknownHost { host: String, known: String },
    #[error("{host}: named twice")]
    Duplicate { host: String },
    #[error(
        "--rollback needs the hosts to roll back, by name (e.g. `hardway push RECIPE node1 --rollback`)"
    )]
    RollbackNeedsHosts,
    #[error(
        "--root {root:?}: expected an absolute path of plain names (letters, digits, . _ @ + = -), no . or .."
    )]
    BadRoot { root: String },
    #[error("{host}: reading {}: {source}", path.display())]
    Read {
        host: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{host}: {}: {source}", path.display())]
    Manifest {
        host: String,
        path: PathBuf,
        source: BundleError,
    },
    #[error("{host}: {} is host {found}'s manifest", path.display())]
    ManifestHost {
        host: String,
        path: PathBuf,
        found: String,
    },
    #[error(
        "{host}: {} does not match its manifest ({source}): refused before connecting (rebuild with `hardway build`)",
        path.display()
    )]
    LocalVerify {
        host: String,
        path: PathBuf,
        source: BundleError,
    },
    #[error("{host}: cannot run ssh: {source}")]
    Spawn {
        host: String,
        source: std::io::Error,
    },
    #[error(
        "{host}: the host key of {target} is not known, and hardway never accepts one by itself \
         (StrictHostKeyChecking=yes). {offered}. Check it against the host's own key (on its console: \
         `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); if they match, trust it: `{trust}` \
         (or the UserKnownHostsFile of your ssh config)"
    )]
    HostKeyUnknown {
        host: String,
        target: String,
        offered: String,
        trust: String,
    },
    #[error(
        "{host}: the host key of {target} is NOT the one known_hosts holds (it offers {fingerprint}): a \
         reinstalled host, or someone in between. Find out which before removing the old key \
         (`ssh-keygen -R {address}`)"
    )]
    HostKeyChanged {
        host: String,
        target: String,
        address: String,
        fingerprint: String,
    },
    #[error("{host}: ssh to {target} failed: {message}")]
    Ssh {
        host: String,
        target: String,
        message: String,
    },
    #[error("{host}: the target program did not start on {target} ({status}): {message}")]
    NotStarted {
        host: String,
        target: String,
        status: String,
        message: String,
    },
    #[error("{host}: {message}")]
    Target { host: String, message: String },
    #[error("{host}: {message}")]
    Protocol { host: String, message: String },
}

/// The result of one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Updated,
    Unchanged,
    RolledBack,
    /// A dry run finished (see the report's changes).
    DryRun,
    Failed,
    /// Not started: an earlier host failed and `--keep-going` was not given.
    Skipped,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::RolledBack => "rolled back",
            Outcome::DryRun => "dry run",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// What happened on one host.
#[derive(Debug)]
pub struct HostReport {
    pub host: String,
    /// `user@address:port`.
    pub target: String,
    pub outcome: Outcome,
    /// The bundle SHA-256 the target's receipt had (hex), if it had one.
    pub old: Option<String>,
    /// The bundle SHA-256 the host has now, or would have.
    pub new: Option<String>,
    /// The receipt's generation afterwards.
    pub generation: Option<u64>,
    pub drift: Vec<Item>,
    pub changes: Vec<Item>,
    pub notes: Vec<String>,
    pub error: Option<PushError>,
    /// The last lines of what ssh and the target program wrote on stderr.
    pub stderr_tail: Vec<String>,
    pub elapsed: Duration,
}

impl HostReport {
    fn new(plan: &HostPlan, outcome: Outcome) -> HostReport {
        HostReport {
            host: plan.host.clone(),
            target: plan.target.to_string(),
            outcome,
            old: None,
            new: None,
            generation: None,
            drift: Vec::new(),
            changes: Vec::new(),
            notes: Vec::new(),
            error: None,
            stderr_tail: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), json_string);
        let items = |v: &[Item]| {
            let each: Vec<String> = v
                .iter()
                .map(|i| {
                    let detail: Vec<String> = i.detail.iter().map(|d| json_string(d)).collect();
                    format!(
                        "{{\"kind\":{},\"detail\":[{}],\"path\":{}}}",
                        json_string(&i.kind),
                        detail.join(","),
                        json_string(&i.path)
                    )
                })
                .collect();
            format!("[{}]", each.join(","))
        };
        let strings = |v: &[String]| {
            let each: Vec<String> = v.iter().map(|s| json_string(s)).collect();
            format!("[{}]", each.join(","))
        };
        format!(
            "{{\"host\":{},\"target\":{},\"result\":{},\"old\":{},\"new\":{},\"generation\":{},\
             \"milliseconds\":{:.1},\"drift\":{},\"changes\":{},\"notes\":{},\"error\":{},\"stderr\":{}}}",
            json_string(&self.host),
            json_string(&self.target),
            json_string(self.outcome.word()),
            opt(&self.old),
            opt(&self.new),
            self.generation
                .map_or("null".to_string(), |g| g.to_string()),
            self.elapsed.as_secs_f64() * 1e3,
            items(&self.drift),
            items(&self.changes),
            strings(&self.notes),
            opt(&self.error.as_ref().map(|e| e.to_string())),
            strings(&self.stderr_tail),
        )
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks `--root`: absolute, plain names (the target program checks it again).
fn check_root(root: &str) -> Result<(), PushError> {
    let bad = || PushError::BadRoot {
        root: root.to_string(),
    };
    let rest = root.strip_prefix('/').ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(());
    }
    for c in rest.split('/') {
        if c.is_empty()
            || c == "."
            || c == ".."
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@+=-".contains(&b))
        {
            return Err(bad());
        }
    }
    Ok(())
}

/// The hosts to push, in order: those named (in the order given), or every host of the recipe (recipe order).
pub fn plan(recipe: &Recipe, hosts: &[String], opts: &Options) -> Result<Vec<HostPlan>, PushError> {
    check_root(&opts.root)?;
    if opts.mode == Mode::Rollback && hosts.is_empty() {
        return Err(PushError::RollbackNeedsHosts);
    }
    let chosen: Vec<&crate::recipe::Host> = if hosts.is_empty() {
        recipe.hosts.iter().collect()
    } else {
        let mut seen = std::collections::BTreeSet::new();
        let mut chosen = Vec::new();
        for name in hosts {
            let h = recipe
                .hosts
                .iter()
                .find(|h| &h.name == name)
                .ok_or_else(|| PushError::UnknownHost {
                    host: name.clone(),
                    known: recipe
                        .hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            if !seen.insert(name.as_str()) {
                return Err(PushError::Duplicate { host: name.clone() });
            }
            chosen.push(h);
        }
        chosen
    };
    Ok(chosen
        .into_iter()
        .map(|h| {
            let target = h.ssh_target();
            HostPlan {
                host: h.name.clone(),
                role: h.role,
                argv: ssh::argv(&target, opts.ssh_config.as_deref(), opts.sudo),
                target,
                bundle: opts.out.join(bundle_file(&h.name)),
                manifest: opts.out.join(manifest_file(&h.name)),
            }
        })
        .collect())
}

/// Reads the host's manifest and, unless told otherwise, verifies the bundle against it. Returns the manifest
/// text (sent verbatim) and the bundle's SHA-256 (hex).
fn local_bundle(plan: &HostPlan, opts: &Options) -> Result<(String, String), PushError> {
    let text = std::fs::read_to_string(&plan.manifest).map_err(|source| PushError::Read {
        host: plan.host.clone(),
        path: plan.manifest.clone(),
        source,
    })?;
    if !opts.verify_locally {
        let sha = text
            .lines()
            .find_map(|l| l.strip_prefix("bundle-sha256 "))
            .unwrap_or_default()
            .to_string();
        return Ok((text, sha));
    }
    let manifest = Manifest::parse(&text).map_err(|source| PushError::Manifest {
        host: plan.host.clone(),
        path: plan.manifest.clone(),
        source,
    })?;
    if manifest.host != plan.host {
        return Err(PushError::ManifestHost {
            host: plan.host.clone(),
            path: plan.manifest.clone(),
            found: manifest.host,
        });
    }
    let file = std::fs::File::open(&plan.bundle).map_err(|source| PushError::Read {
        host: plan.host.clone(),
        path: plan.bundle.clone(),
        source,
    })?;
    verify_bundle(&manifest, BufReader::new(file)).map_err(|source| PushError::LocalVerify {
        host: plan.host.clone(),
        path: plan.bundle.clone(),
        source,
    })?;
    Ok((text, hex(&manifest.bundle.sha256)))
}

/// How many lines of stderr a report keeps.
const STDERR_TAIL: usize = 12;

/// Pushes to one host: one ssh session. Never panics; a failure is in the report.
pub fn push_host(plan: &HostPlan, opts: &Options) -> HostReport {
    let start = Instant::now();
    let mut report = HostReport::new(plan, Outcome::Failed);
    if let Err(e) = session(plan, opts, &mut report) {
        report.outcome = Outcome::Failed;
        report.error = Some(e);
    }
    report.elapsed = start.elapsed();
    report
}

fn session(plan: &HostPlan, opts: &Options, report: &mut HostReport) -> Result<(), PushError> {
    let host = || plan.host.clone();
    let (manifest, sha) = match opts.mode {
        Mode::Rollback => (String::new(), String::new()),
        Mode::Push | Mode::DryRun => local_bundle(plan, opts)?,
    };
    if opts.mode != Mode::Rollback {
        report.new = Some(sha);
    }
    let Some((program, args)) = plan.argv.split_first() else {
        return Err(PushError::Protocol {
            host: host(),
            message: "empty ssh command line".to_string(),
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PushError::Spawn {
            host: host(),
            source,
        })?;
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    });
    let mut stdin = child.stdin.take();
    let header = protocol::header(opts.mode, &opts.root, &plan.host, &manifest);
    // A write fails when the program (or ssh) is gone already: what it said on stdout tells why.
    let mut write_error = stdin.as_mut().and_then(|w| {
        w.write_all(header.as_bytes())
            .and_then(|()| w.flush())
            .err()
    });
    let mut s = Session::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if protocol::parse_line(&line) == Some(protocol::Line::NeedBundle) {
                if let Some(mut w) = stdin.take() {
                    let sent = std::fs::File::open(&plan.bundle)
                        .and_then(|mut f| std::io::copy(&mut f, &mut w))
                        .and_then(|_| w.flush());
                    if let Err(e) = sent {
                        write_error.get_or_insert(e);
                    }
                    // Dropping stdin is the end of the bundle.
                }
            } else {
                s.record(&line);
            }
        }
    }
    drop(stdin);
    let status = child.wait().map_err(|source| PushError::Spawn {
        host: host(),
        source,
    })?;
    let stderr = stderr_reader.join().unwrap_or_default();
    let lines: Vec<String> = stderr
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    report.stderr_tail = lines[lines.len().saturating_sub(STDERR_TAIL)..].to_vec();
    if let Some(Some((_, old))) = &s.receipt {
        report.old = Some(old.clone());
    }
    report.drift = std::mem::take(&mut s.drift);
    report.changes = std::mem::take(&mut s.changes);
    report.notes = std::mem::take(&mut s.notes);
    let last_stderr = || {
        lines
            .last()
            .cloned()
            .unwrap_or_else(|| "(nothing on stderr)".to_string())
    };

    if s.hello.is_none() {
        let target = plan.target.to_string();
        if status.code() == Some(255) {
            return Err(match ssh::host_key_problem(&stderr) {
                Some(ssh::HostKeyProblem::Unknown { key_type }) => {
                    let offered = match ssh::scan_fingerprints(&plan.target, &key_type) {
                        Ok(prints) => format!("The host offers {}", prints.join(", ")),
                        Err(why) => format!(
                            "Its fingerprint could not be read ({why}; behind a jump host, ask its \
                             administrator)"
                        ),
                    };
                    PushError::HostKeyUnknown {
                        host: host(),
                        target,
                        offered,
                        trust: ssh::trust_command(&plan.target, &key_type),
                    }
                }
                Some(ssh::HostKeyProblem::Changed { fingerprint }) => PushError::HostKeyChanged {
                    host: host(),
                    target,
                    address: plan.target.address.clone(),
                    fingerprint: fingerprint.unwrap_or_else(|| "another key".to_string()),
                },
                None => PushError::Ssh {
                    host: host(),
                    target,
                    message: last_stderr(),
                },
            });
        }
        return Err(PushError::NotStarted {
            host: host(),
            target,
            status: status.to_string(),
            message: last_stderr(),
        });
    }
    if s.hello != Some(protocol::VERSION) {
        return Err(PushError::Protocol {
            host: host(),
            message: format!(
                "the target program speaks protocol {:?}, not {}",
                s.hello,
                protocol::VERSION
            ),
        });
    }
    if let Some(message) = s.error {
        return Err(PushError::Target {
            host: host(),
            message,
        });
    }
    let finish = match (s.result, status.success()) {
        (Some(f), true) => f,
        (_, _) => {
            let why = write_error.map_or(String::new(), |e| format!("; sending: {e}"));
            return Err(PushError::Protocol {
                host: host(),
                message: format!(
                    "the target program ended ({status}) without a result{why}: {}",
                    last_stderr()
                ),
            });
        }
    };
    let (outcome, generation, sha) = match finish {
        Finish::Unchanged { generation, sha256 } => (Outcome::Unchanged, Some(generation), sha256),
        Finish::Updated { generation, sha256 } => (Outcome::Updated, Some(generation), sha256),
        Finish::RolledBack { generation, sha256 } => {
            (Outcome::RolledBack, Some(generation), sha256)
        }
        Finish::DryRun { .. } => (
            Outcome::DryRun,
            s.receipt.flatten().map(|(g, _)| g),
            report.new.clone().unwrap_or_default(),
        ),
    };
    report.outcome = outcome;
    report.generation = generation;
    report.new = Some(sha);
    Ok(())
}

/// Pushes every planned host, up to `opts.jobs` at once (masters one at a time unless
/// `opts.parallel_masters`); after a failure starts no new host unless `opts.keep_going`. `done` is called as
/// each host finishes (from its worker thread). Reports come back in plan order.
pub fn push_all(
    plans: &[HostPlan],
    opts: &Options,
    done: &(dyn Fn(&HostReport) + Sync),
) -> Vec<HostReport> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let masters = Mutex::new(());
    let reports: Mutex<Vec<Option<HostReport>>> =
        Mutex::new((0..plans.len()).map(|_| None).collect());
    let stop = || failed.load(Ordering::SeqCst) && !opts.keep_going;
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, plans.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(plan) = plans.get(i) else { break };
                    let report = if stop() {
                        HostReport::new(plan, Outcome::Skipped)
                    } else if plan.role == Role::Master && !opts.parallel_masters {
                        let _one_master = masters.lock().unwrap_or_else(|e| e.into_inner());
                        if stop() {
                            HostReport::new(plan, Outcome::Skipped)
                        } else {
                            push_host(plan, opts)
                        }
                    } else {
                        push_host(plan, opts)
                    };
                    if report.outcome == Outcome::Failed {
                        failed.store(true, Ordering::SeqCst);
                    }
                    done(&report);
                    let mut all = reports.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(slot) = all.get_mut(i) {
                        *slot = Some(report);
                    }
                }
            });
        }
    });
    reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        for ok in ["/", "/srv/x", "/srv/x/", "/a-b_c.d"] {
            assert!(check_root(ok).is_ok(), "{ok}");
        }
        for bad in ["", "srv", "/a/../b", "/a//b", "/a b", "/./a", "/a;b"] {
            assert!(check_root(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
