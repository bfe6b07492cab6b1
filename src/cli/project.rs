//! The project root: where `secrets/seed`, `store/` and `out/` are when they are not given explicitly.
//!
//! As Cargo finds `Cargo.toml`, hardway finds the nearest ancestor of the recipe (or, for a command without a
//! recipe, of the working directory) that holds a `.hardway/` directory, made by `hardway init` and meant to be
//! committed. The working directory never changes where state goes: `cd recipes && hardway build seed.toml` uses
//! the same seed, store and `out/` as `hardway build recipes/seed.toml`.

use std::path::{Path, PathBuf};

/// The directory that marks a project root.
pub const MARKER: &str = ".hardway";

/// Where the defaults of one command are resolved from.
pub struct Project {
    /// The directory the search started at (absolute).
    start: PathBuf,
    /// What the search started from, for messages: the recipe, or "the working directory".
    from: String,
    root: Option<PathBuf>,
}

impl Project {
    /// The project of a recipe: the nearest ancestor of the recipe's directory holding `.hardway/`.
    pub fn of_recipe(recipe: &Path) -> Project {
        let dir = recipe.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let start = std::fs::canonicalize(dir).unwrap_or_else(|_| absolute(dir));
        Project::search(start, recipe.display().to_string())
    }

    /// The project of the working directory (commands that take no recipe).
    pub fn of_cwd() -> Project {
        let start = std::fs::canonicalize(".").unwrap_or_else(|_| absolute(Path::new(".")));
        Project::search(start, "the working directory".to_string())
    }

    /// The project of the first recipe given, else of the working directory.
    pub fn of_recipes(recipes: &[PathBuf]) -> Project {
        recipes
            .first()
            .map_or_else(Project::of_cwd, |r| Project::of_recipe(r))
    }

    fn search(start: PathBuf, from: String) -> Project {
        let root = start
            .ancestors()
            .find(|d| d.join(MARKER).is_dir())
            .map(Path::to_path_buf);
        Project { start, from, root }
    }

    /// The root found, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `explicit` if given (relative to the working directory, as typed), else `default` under the root.
    /// Fails when there is no root to put the default under, naming where it looked and what to do.
    pub fn resolve(
        &self,
        explicit: Option<&Path>,
        default: &str,
        option: &str,
    ) -> anyhow::Result<PathBuf> {
        if let Some(p) = explicit {
            return Ok(p.to_path_buf());
        }
        match &self.root {
            Some(root) => Ok(root.join(default)),
            None => anyhow::bail!(
                "no hardway project for {}: neither {} nor any directory above it holds {MARKER}/, so there is \
                 no place for {default}; run `hardway init` in the project's top directory (it makes {MARKER}/ \
                 and the seed), or give {option}",
                self.from,
                self.start.display()
            ),
        }
    }

    /// One line naming the root in use, for the build's output.
    pub fn describe(&self) -> Option<String> {
        self.root
            .as_ref()
            .map(|r| format!("project root {} (holds {MARKER}/)", r.display()))
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Makes `dir` a project root: creates `dir/.hardway/` with a README saying what it is. Returns whether it
/// was created (false: it was there already).
pub fn mark(dir: &Path) -> anyhow::Result<bool> {
    use anyhow::Context;
    let marker = dir.join(MARKER);
    if marker.is_dir() {
        return Ok(false);
    }
    std::fs::create_dir_all(&marker).with_context(|| format!("creating {}", marker.display()))?;
    let readme = marker.join("README");
    std::fs::write(
        &readme,
        "This directory marks a hardway project root (commit it).\n\
         hardway resolves secrets/seed, store/ and out/ from the nearest ancestor of a recipe that holds it.\n",
    )
    .with_context(|| format!("writing {}", readme.display()))?;
    Ok(true)
}
