//! `hardway renew`: a new `[cluster] issue_date` in the recipe, rewritten in place (comments and layout kept),
//! and what the next build re-issues.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::engine::seed::{Seed, SeedError};
use crate::recipe::{Recipe, civil_date};

/// Set a new [cluster] issue_date in the recipe and say what the next build re-issues.
///
/// Writes midnight UTC of --date (default: today) as the recipe's issue_date, changing no other byte of the
/// file (comments, layout and mode stay). The recipe is replaced atomically, and only if it still validates with
/// the new date (certificates must end by 9999-12-31). Prints the old and new date, the new validity windows and,
/// with the seed, every derivation whose store path changes; then build and push to deploy the new certificates.
/// Keys stay the same (bump a [pki.generations] entry to rotate one).
///
/// Example: hardway renew recipes/seed.toml --date 2027-11-01 --dry-run
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (TOML).
    recipe: PathBuf,
    /// The new issue date (YYYY-MM-DD, UTC), written as YYYY-MM-DDT00:00:00Z [default: today].
    #[arg(long, value_parser = super::check::parse_date)]
    date: Option<i64>,
    /// Print what would change; leave the recipe as it is.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    seed: super::SeedArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = &args.recipe;
    let old = Recipe::load(path).map_err(anyhow::Error::new)?;
    let date = match args.date {
        Some(d) => d,
        // The clock read of renew: it only picks the date the user did not give. It reaches a build output only
        // through the recipe written here, which the user then builds; a build itself still reads no clock.
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            now - now.rem_euclid(86_400)
        }
    };
    if date == old.cluster.issue_date {
        println!(
            "{}: already issue_date {}; nothing to renew",
            path.display(),
            old.cluster.issue_date_text
        );
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let new_text =
        with_issue_date(&text, date).with_context(|| format!("editing {}", path.display()))?;
    let new = Recipe::parse(&new_text, path).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "with issue_date {}, {} would not be valid; it is unchanged",
            instant(date),
            path.display()
        ))
    })?;
    // Which derivations change needs the seed's fingerprint; without a seed, the date is renewed all the same.
    let seed = seed(&args)?;
    let changed = match &seed {
        Ok(seed) => Ok(changed(&old, &new, seed)?),
        Err(why) => Err(why.clone()),
    };
    if !args.dry_run {
        replace(path, &new_text)?;
    }
    report(path, &old, &new, &changed, args.dry_run);
    Ok(())
}

/// The seed, or why there is none (no project root to find it under, or no file there). A seed that is there
/// but cannot be used (its mode, its length) is an error.
fn seed(args: &Args) -> anyhow::Result<Result<Seed, String>> {
    let project = super::project::Project::of_recipe(&args.recipe);
    let path = match args.seed.path(&project) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e.to_string())),
    };
    match Seed::load(&path) {
        Ok(s) => Ok(Ok(s)),
        Err(SeedError::Missing(p)) => Ok(Err(format!(
            "there is no seed at {} (give --seed-file or HARDWAY_SEED_FILE)",
            p.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `text` with `[cluster] issue_date` set to `date` (Unix seconds, midnight UTC); every other byte as it was.
fn with_issue_date(text: &str, date: i64) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let value = doc
        .get_mut("cluster")
        .and_then(toml_edit::Item::as_table_like_mut)
        .and_then(|t| t.get_mut("issue_date"))
        .and_then(toml_edit::Item::as_value_mut)
        .context("no [cluster] issue_date")?;
    let datetime: toml_edit::Datetime = instant(date).parse()?;
    // The comment after the value, and the spaces around it, stay.
    let decor = value.decor().clone();
    *value = toml_edit::Value::from(datetime);
    *value.decor_mut() = decor;
    Ok(doc.to_string())
}

/// Replaces the recipe (where a link points, if it is one) by `text`: written beside it with its mode, then
/// renamed over it, so that a reader sees the old file or the new one, never a part.
fn replace(recipe: &Path, text: &str) -> anyhow::Result<()> {
    let target =
        std::fs::canonicalize(recipe).with_context(|| format!("reading {}", recipe.display()))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let meta =
        std::fs::metadata(&target).with_context(|| format!("reading {}", target.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().set_permissions(meta.permissions()))
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    // The owner stays too where we may set it (as root); otherwise the file is ours, as an editor would leave it.
    let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
    tmp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", target.display()))?;
    Ok(())
}

/// The derivations of `new`'s plan whose store path is not the one `old`'s plan gives them (by name).
fn changed(old: &Recipe, new: &Recipe, seed: &Seed) -> anyhow::Result<Vec<String>> {
    let before = crate::plan::plan(old, seed.fingerprint())?;
    let after = crate::plan::plan(new, seed.fingerprint())?;
    Ok(after
        .nodes
        .iter()
        .filter(|n| {
            before
                .find(&n.drv.name)
                .is_none_or(|i| before.nodes[i].store_name != n.store_name)
        })
        .map(|n| n.store_name.clone())
        .collect())
}

fn report(
    path: &Path,
    old: &Recipe,
    new: &Recipe,
    changed: &Result<Vec<String>, String>,
    dry_run: bool,
) {
    let p = path.display();
    let start = new.cluster.issue_date;
    let mut out = format!(
        "{p}: issue_date {} -> {}\n",
        old.cluster.issue_date_text, new.cluster.issue_date_text
    );
    for (what, hours, end) in super::build::validity_windows(new) {
        out.push_str(&format!(
            "  {what}: valid {} to {} ({hours} hours)\n",
            instant(start),
            instant(end)
        ));
    }
    match changed {
        Ok(names) => {
            out.push_str(&format!(
                "re-issued with the new date ({} derivations, at new store paths):\n",
                names.len()
            ));
            for n in names {
                out.push_str(&format!("  {n}\n"));
            }
        }
        Err(why) => out.push_str(&format!(
            "what is re-issued with the new date is listed only with the seed: {why}\n"
        )),
    }
    out.push_str(&if dry_run {
        format!("dry run: {p} is unchanged; without --dry-run, renew writes the new date\n")
    } else {
        format!("next: hardway build {p}, then hardway push {p}\n")
    });
    print!("{out}");
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
fn instant(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        civil_date(secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}
