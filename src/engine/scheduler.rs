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
    let workers = jobs.clamp(1, n.max(1));
    // First, which paths can be reused: checked in parallel chunks with no shared state (a no-op build is
    // only this). Dependencies do not matter for a reuse; only what is left is scheduled in dependency order.
    let reused = reusable(plan, store, workers, reporter);
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, node) in plan.nodes.iter().enumerate() {
        if reused[i] {
            continue;
        }
        for &d in node.deps.iter().filter(|&&d| !reused[d]) {
            waiting[i] += 1;
            users[d].push(i);
        }
    }
    let todo = reused.iter().filter(|r| !**r).count();
    struct State {
        ready: Vec<usize>,
        waiting: Vec<usize>,
        running: usize,
        done: usize,
        summary: Summary,
        error: Option<BuildError>,
    }
    // Ready work is taken from the end; reversing keeps plan order for -j 1 (readable logs, same results).
    let mut ready: Vec<usize> = (0..n).filter(|&i| !reused[i] && waiting[i] == 0).collect();
    ready.reverse();
    let state = Mutex::new(State {
        ready,
        waiting,
        running: 0,
        done: 0,
        summary: Summary {
            reused: n - todo,
            ..Summary::default()
        },
        error: None,
    });
    let wake = Condvar::new();
    let workers = workers.clamp(1, todo.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = {
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if st.error.is_some() || st.done == todo {
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

/// Which nodes' store paths can be reused as they are (reported as reused); checked by `workers` threads.
fn reusable(plan: &Graph, store: &Store, workers: usize, reporter: &dyn Reporter) -> Vec<bool> {
    let n = plan.nodes.len();
    let chunk = n.div_ceil(workers.max(1)).max(1);
    let mut flags = vec![false; n];
    std::thread::scope(|scope| {
        for (c, part) in flags.chunks_mut(chunk).enumerate() {
            scope.spawn(move || {
                for (k, flag) in part.iter_mut().enumerate() {
                    let node = &plan.nodes[c * chunk + k];
                    let start = Instant::now();
                    // An error here is not lost: the path is scheduled, and realising it reports it.
                    if store.reusable(&node.store_name).unwrap_or(false) {
                        *flag = true;
                        reporter.realised(
                            &node.drv.name,
                            &node.store_name,
                            Outcome::Reused,
                            start.elapsed(),
                        );
                    }
                }
            });
        }
    });
    flags
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
