//! Realising a graph: dependency order, independent derivations in parallel, existing paths reused.
//!
//! Each derivation's builder is looked up in the [`Registry`] by name and version; the scheduler knows no
//! builder by name.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::builder::{BuildContext, Registry};
use super::graph::Graph;
use super::seed::Seed;
use super::store::{Outcome, Store, StoreError};

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
    /// Of `built`: paths that existed but were corrupt (`--check-store`), rebuilt.
    pub repaired: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Realises every derivation of `plan` (builders from `registry`) with up to `jobs` builders at once.
pub fn realise(
    plan: &Graph,
    store: &Store,
    seed: &Seed,
    registry: &Registry,
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
                    let result = realise_one(plan, store, seed, registry, i, reporter);
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    st.running -= 1;
                    match result {
                        Ok(outcome) => {
                            st.done += 1;
                            match outcome {
                                Outcome::Built => st.summary.built += 1,
                                Outcome::Reused => st.summary.reused += 1,
                                Outcome::Repaired => {
                                    st.summary.built += 1;
                                    st.summary.repaired += 1;
                                }
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
    plan: &Graph,
    store: &Store,
    seed: &Seed,
    registry: &Registry,
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
    let ctx = BuildContext {
        seed,
        drv: &node.drv,
        inputs,
    };
    let outcome = store.realise(&node.drv, &node.store_name, |out| registry.build(&ctx, out))?;
    reporter.realised(&node.drv.name, &node.store_name, outcome, start.elapsed());
    Ok(outcome)
}
