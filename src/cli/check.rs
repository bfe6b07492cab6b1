//! `hardway check`: audit a build; exit 1 on any error.

use crate::ops::check::check;

/// Audit a build as an auditor would (needs the seed's fingerprint only)
///
/// Chain of trust, CN/O for the Node authorizer and RBAC, API server SANs, kubeconfigs, validity windows,
/// least privilege per host, one encryption config on all masters.
///
/// Exits 1 when there is an error; warnings alone exit 0.
/// Example: hardway check recipes/seed.toml --date 2026-06-01
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Check validity as of this day (YYYY-MM-DD, UTC) [default: today]. Warns when a certificate expires
    /// within 30 days of it.
    #[arg(long, value_parser = parse_date)]
    date: Option<i64>,
    /// Print the findings and counts as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<bool> {
    let public = args.target.load_public()?;
    for note in public.notes() {
        eprintln!("{note}");
    }
    let super::Public {
        recipe,
        plan,
        store,
        fingerprint,
        ..
    } = &public;
    let date = match args.date {
        Some(d) => d,
        // A clock read ("today" for an audit), as build's validity warning and renew's default date: never in an output.
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let report = check(recipe, plan, store, date).map_err(|e| match (&e, public.built_with_other_seed()) {
        (crate::ops::check::CheckError::NotBuilt(..), Some(other)) => anyhow::anyhow!(
            "{e}; the store holds this recipe's build with another seed (fingerprint {other}), not with this one \
             ({fingerprint}): give that seed with --seed-file, or build with this one"
        ),
        _ => anyhow::Error::new(e),
    })?;
    if args.json {
        let findings: Vec<serde_json::Value> = report
            .findings
            .iter()
            .map(|f| serde_json::json!({"finding": f.to_string()}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "ok": report.errors() == 0,
                "certificates": report.certificates,
                "kubeconfigs": report.kubeconfigs,
                "hosts": report.hosts,
                "errors": report.errors(),
                "warnings": report.warnings(),
                "findings": findings,
            })
        );
        return Ok(report.errors() == 0);
    }
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

/// `YYYY-MM-DD` (a real calendar day, UTC) as Unix seconds; a clap value parser, so a bad date is a usage
/// error (exit 2).
pub(super) fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date YYYY-MM-DD");
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1..=days_in_month).contains(&d) {
        return Err(format!("{s:?}: month {m} of {y} has {days_in_month} days"));
    }
    Ok(crate::recipe::days_from_civil(y, m, d) * 86_400)
}
