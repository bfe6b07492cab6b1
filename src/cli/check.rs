//! `hardway check`: audit a build; exit 1 on any error.

use crate::ops::check::check;

/// Audit a build: chain of trust, CN/O for the Node authorizer and RBAC, API server SANs, kubeconfigs,
/// validity windows, least privilege per host, one encryption config on all masters.
///
/// Exits 1 when there is an error; warnings alone exit 0.
/// Example: hardway check recipes/seed.toml --date 2026-06-01
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Check validity as of this day (YYYY-MM-DD, UTC) [default: today]. Warns when a certificate expires
    /// within 30 days of it.
    #[arg(long)]
    date: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<bool> {
    let super::Loaded {
        recipe,
        plan,
        store,
        ..
    } = args.target.load()?;
    let date = match &args.date {
        Some(d) => parse_date(d)?,
        // The only clock read of hardway: "today" for an audit, never in an output.
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let report = check(&recipe, &plan, &store, date)?;
    for f in &report.findings {
        println!("{f}");
    }
    println!(
        "checked {} certificates, {} kubeconfigs, {} hosts: {} errors, {} warnings",
        report.certificates,
        report.kubeconfigs,
        report.hosts,
        report.errors(),
        report.warnings()
    );
    Ok(report.errors() == 0)
}

fn parse_date(s: &str) -> anyhow::Result<i64> {
    let parts: Vec<&str> = s.split('-').collect();
    let bad = || anyhow::anyhow!("--date {s:?}: expected YYYY-MM-DD");
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(crate::recipe::days_from_civil(y, m, d) * 86_400)
}
