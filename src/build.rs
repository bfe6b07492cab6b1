//! Realising a plan: dependency order, independent derivations in parallel, existing paths reused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::derivation::Derivation;
use crate::encryption;
use crate::kubeconfig;
use crate::nginx;
use crate::overlay;
use crate::plan::Plan;
use crate::seed::Seed;
use crate::store::{FileMode, Outcome, OutputWriter, Store, StoreError};

/// What a builder sees: the seed (for purpose-bound secrets) and its declared inputs' store paths by role.
pub struct BuildContext<'a> {
    pub seed: &'a Seed,
    pub inputs: BTreeMap<String, PathBuf>,
}

/// Progress of a build, for the CLI to show. Libraries never print.
pub trait Reporter: Sync {
    fn realised(&self, name: &str, store_name: &str, outcome: Outcome, took: Duration);
}

/// A reporter that shows nothing.
pub struct Silent;

impl Reporter for Silent {
    fn realised(&self, _: &str, _: &str, _: Outcome, _: Duration) {}
}

/// Counts of a finished build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub built: usize,
    pub reused: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs the builder named by `drv`.
fn run_builder(drv: &Derivation, ctx: &BuildContext, out: &mut OutputWriter) -> Result<(), String> {
    match (drv.builder.as_str(), drv.builder_version) {
        (encryption::BUILDER, encryption::BUILDER_VERSION) => {
            let params: encryption::Params = params(drv)?;
            check_seed(ctx, &params.seed)?;
            out.file(
                encryption::FILE,
                encryption::render(ctx.seed, &params).as_bytes(),
                FileMode::Secret,
            )
        }
        (nginx::BUILDER, nginx::BUILDER_VERSION) => {
            let params: nginx::Params = params(drv)?;
            out.file(
                nginx::FILE,
                nginx::render(&params).as_bytes(),
                FileMode::Public,
            )?;
            out.file(
                nginx::INCLUDE_FILE,
                nginx::render_include().as_bytes(),
                FileMode::Public,
            )
        }
        (kubeconfig::BUILDER, kubeconfig::BUILDER_VERSION) => {
            let params: kubeconfig::Params = params(drv)?;
            let text = kubeconfig::build(
                &params,
                input(ctx, kubeconfig::INPUT_CA)?,
                input(ctx, kubeconfig::INPUT_CLIENT)?,
            )?;
            out.file(&params.file, text.as_bytes(), FileMode::Secret)
        }
        (overlay::BUILDER, overlay::BUILDER_VERSION) => overlay::build(&params(drv)?, ctx, out),
        (overlay::BUNDLE_BUILDER, overlay::BUNDLE_BUILDER_VERSION) => {
            overlay::build_bundle(&params(drv)?, ctx, out)
        }
        (b, _) if crate::pki::is_builder(b) => crate::pki::build(drv, ctx, out),
        (b, v) => Err(format!("unknown builder {b:?} version {v}")),
    }
}

/// A derivation's parameters as the builder's type.
pub(crate) fn params<P: serde::de::DeserializeOwned>(drv: &Derivation) -> Result<P, String> {
    drv.params
        .deserialized()
        .map_err(|e| format!("malformed parameters: {e}"))
}

/// The store path of a declared input.
pub fn input<'a>(ctx: &'a BuildContext, role: &str) -> Result<&'a std::path::Path, String> {
    ctx.inputs
        .get(role)
        .map(PathBuf::as_path)
        .ok_or_else(|| format!("missing input {role:?}"))
}

/// Refuses to build with a seed other than the one the derivation was planned with.
pub(crate) fn check_seed(
    ctx: &BuildContext,
    planned: &crate::seed::Fingerprint,
) -> Result<(), String> {
    if ctx.seed.fingerprint() == *planned {
        Ok(())
    } else {
        Err("planned with another seed than the one given".to_string())
    }
}

/// Realises every derivation of `plan` with up to `jobs` builders at once.
pub fn realise(
    plan: &Plan,
    store: &Store,
    seed: &Seed,
    jobs: usize,
    reporter: &dyn Reporter,
) -> Result<Summary, BuildError> {
    let n = plan.nodes.len();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, node) in plan.nodes.iter().enumerate() {
        waiting[i] = node.deps.len();
        for &d in &node.deps {
            users[d].push(i);
        }
    }
    struct State {
        ready: Vec<usize>,
        waiting: Vec<usize>,
        running: usize,
        done: usize,
        summary: Summary,
        error: Option<BuildError>,
    }
    // Ready work is taken from the end; reversing keeps plan order for -j 1 (readable logs, same results).
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    ready.reverse();
    let state = Mutex::new(State {
        ready,
        waiting,
        running: 0,
        done: 0,
        summary: Summary::default(),
        error: None,
    });
    let wake = Condvar::new();
    let workers = jobs.clamp(1, n.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = {
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if st.error.is_some() || st.done == n {
                                break None;
                            }
                            if let Some(i) = st.ready.pop() {
                                st.running += 1;
                                break Some(i);
                            }
                            st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let Some(i) = next else {
                        wake.notify_all();
                        return;
                    };
                    let result = realise_one(plan, store, seed, i, reporter);
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    st.running -= 1;
                    match result {
                        Ok(outcome) => {
                            st.done += 1;
                            match outcome {
                                Outcome::Built => st.summary.built += 1,
                                Outcome::Reused => st.summary.reused += 1,
                            }
                            for &u in &users[i] {
                                st.waiting[u] -= 1;
                                if st.waiting[u] == 0 {
                                    st.ready.push(u);
                                }
                            }
                        }
                        Err(e) => {
                            if st.error.is_none() {
                                st.error = Some(e);
                            }
                        }
                    }
                    drop(st);
                    wake.notify_all();
                }
            });
        }
    });
    let st = state.into_inner().unwrap_or_else(|p| p.into_inner());
    match st.error {
        Some(e) => Err(e),
        None => Ok(st.summary),
    }
}

fn realise_one(
    plan: &Plan,
    store: &Store,
    seed: &Seed,
    i: usize,
    reporter: &dyn Reporter,
) -> Result<Outcome, BuildError> {
    let node = &plan.nodes[i];
    let start = Instant::now();
    let inputs = node
        .drv
        .inputs
        .iter()
        .filter_map(|(role, h)| {
            plan.node_by_hash(h)
                .map(|n| (role.clone(), store.path(&n.store_name)))
        })
        .collect();
    let ctx = BuildContext { seed, inputs };
    let outcome = store.realise(&node.drv, &node.store_name, |out| {
        run_builder(&node.drv, &ctx, out)
    })?;
    reporter.realised(&node.drv.name, &node.store_name, outcome, start.elapsed());
    Ok(outcome)
}
