//! Pinned sources for `build`, `fetch` and `add`: what is missing, downloading it (with a progress bar on a
//! terminal), importing a file by its hash, and the messages that say which command brings a source in.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;

use crate::artifacts::{PinnedSource, sources};
use crate::engine::fetch::{FetchError, FetchOptions, FetchProgress, Fetcher};
use crate::engine::graph::{Graph, Node};
use crate::engine::source::{self, hex};
use crate::engine::store::Store;
use crate::recipe::Recipe;

/// A bar on stderr when it is a terminal; nothing otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(quiet: bool) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Bar(Some(bar))
    }
}

impl FetchProgress for Bar {
    fn start(&self, url: &str, total: Option<u64>) {
        if let Some(b) = &self.0 {
            b.set_message(format!("fetching {url}"));
            b.set_position(0);
            b.set_length(total.unwrap_or(0));
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Download options; `HARDWAY_FETCH_TIMEOUT` (seconds) bounds both connecting and each wait for data.
fn fetch_options() -> anyhow::Result<FetchOptions> {
    let mut o = FetchOptions::default();
    if let Ok(v) = std::env::var("HARDWAY_FETCH_TIMEOUT") {
        let secs: f64 = v
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s > 0.0)
            .ok_or_else(|| {
                anyhow::anyhow!("HARDWAY_FETCH_TIMEOUT={v:?} is not a positive number of seconds")
            })?;
        o.connect_timeout = std::time::Duration::from_secs_f64(secs);
        o.read_timeout = std::time::Duration::from_secs_f64(secs);
    }
    Ok(o)
}

/// `recipes/seed.toml:12`.
fn origin(recipe_path: &Path, s: &PinnedSource) -> String {
    format!("{}:{}", recipe_path.display(), s.line)
}

/// The node of `s` in `graph`, or a node made for it alone (fetch and add need no seed, so no full plan).
fn node_of(graph: Option<&Graph>, s: &PinnedSource) -> anyhow::Result<Node> {
    if let Some(n) = graph.and_then(|g| g.find(&s.file).map(|i| g.nodes[i].clone())) {
        return Ok(n);
    }
    let drv = s.derivation()?;
    let hash = drv.hash();
    Ok(Node {
        store_name: drv.store_name(),
        drv,
        hash,
        deps: Vec::new(),
    })
}

/// Brings every pinned source of `recipe` into `store`: downloads what is missing, unless `offline`, where a
/// missing source is an error naming the commands that bring it in. An empty pin always fails, with the
/// hash to paste (downloaded to compute it, unless offline). Returns how many sources were downloaded.
pub fn ensure(
    recipe: &Recipe,
    recipe_path: &Path,
    graph: Option<&Graph>,
    store: &Store,
    offline: bool,
    quiet: bool,
) -> anyhow::Result<usize> {
    let mut missing = Vec::new();
    let mut fetched = 0;
    let mut fetcher: Option<Fetcher> = None;
    for s in sources(recipe) {
        let node = node_of(graph, &s)?;
        if s.sha256.is_some() && store.is_built(&node.store_name) {
            continue;
        }
        if offline {
            missing.push(s);
            continue;
        }
        if fetcher.is_none() {
            fetcher = Some(Fetcher::new(fetch_options()?)?);
        }
        let Some(f) = &fetcher else { continue };
        let tmp = store.root().join(".tmp");
        match f.fetch(&s.urls, s.sha256.as_ref(), &tmp, &Bar::new(quiet)) {
            Ok(done) => {
                source::admit(store, &node, done.file.path())?;
                fetched += 1;
            }
            Err(e) => match e.root() {
                FetchError::Unpinned { url, got, .. } => bail!(
                    "{}: {} is empty: the file at {url} has\n  got: sha256:{}\nPin it: put this line in the \
                     recipe's [etcd] section:\n  sha256 = \"{}\"",
                    origin(recipe_path, &s),
                    s.field,
                    hex(got),
                    hex(got)
                ),
                _ => {
                    let hint = if matches!(e.root(), FetchError::HashMismatch { .. }) {
                        String::new()
                    } else {
                        format!(
                            "\nNo network here? Download {} elsewhere (`hardway fetch {r}` on a connected \
                             machine, or by hand) and import it: hardway add FILE --recipe {r}",
                            s.file,
                            r = recipe_path.display()
                        )
                    };
                    bail!(
                        "{}{hint}",
                        e.at(format!("{} ({})", origin(recipe_path, &s), s.field))
                    );
                }
            },
        }
    }
    if !missing.is_empty() {
        let mut msg = String::from("offline, and sources are missing from the store:");
        for s in &missing {
            match s.sha256 {
                Some(pin) => msg.push_str(&format!(
                    "\n  {} (sha256:{}, pinned at {})",
                    s.file,
                    hex(&pin),
                    origin(recipe_path, s)
                )),
                None => msg.push_str(&format!(
                    "\n  {} ({} at {} is empty: no hash can be learned offline)",
                    s.file,
                    s.field,
                    origin(recipe_path, s)
                )),
            }
        }
        msg.push_str(&format!(
            "\nOn a connected machine: hardway fetch {r}\nWith a copy of the file here: hardway add FILE --recipe {r}",
            r = recipe_path.display()
        ));
        bail!(msg);
    }
    Ok(fetched)
}

/// Imports `file` as whichever pinned source of `recipes` has its SHA-256; refuses a file that matches none.
pub fn add(
    file: &Path,
    recipes: &[(std::path::PathBuf, Recipe)],
    store: &Store,
) -> anyhow::Result<String> {
    let got = crate::engine::fetch::sha256_file(file)?;
    for (path, recipe) in recipes {
        for s in sources(recipe) {
            if s.sha256 == Some(got) {
                let node = node_of(None, &s)?;
                source::admit(store, &node, file)?;
                return Ok(format!(
                    "added {} as {} (pinned at {})",
                    file.display(),
                    node.store_name,
                    origin(path, &s)
                ));
            }
        }
    }
    let names: Vec<String> = recipes
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    bail!(
        "{}: sha256:{} matches no pin of {}; nothing was added",
        file.display(),
        hex(&got),
        if names.is_empty() {
            "any recipe (none found)".to_string()
        } else {
            names.join(", ")
        }
    )
}
