//! `hardway renew`: a new issue_date written into the recipe in place (every other byte kept), refused when the
//! recipe would not validate with it, and the certificates the next build re-issues.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::*;

const OLD: &str = "issue_date = 2026-12-01T00:00:00Z";

/// The recipe, its mode, and what else is in its directory (a leftover temporary file would show).
fn state(recipe: &Path) -> (Vec<u8>, u32, BTreeSet<String>) {
    let dir = recipe.parent().expect("dir");
    let names = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mode = std::fs::metadata(recipe)
        .expect("meta")
        .permissions()
        .mode()
        & 0o7777;
    (std::fs::read(recipe).expect("read"), mode, names)
}

/// `hardway renew RECIPE ARGS…` (no seed unless ARGS give one; the project root is the recipe's directory).
fn renew(recipe: &Path, args: &[&str]) -> std::process::Command {
    let mut c = hardway();
    c.arg("renew").arg(recipe).args(args);
    c
}

/// `openssl x509 -noout -startdate` of a certificate.
fn not_before(cert: &Path) -> String {
    ok(std::process::Command::new("openssl")
        .args(["x509", "-noout", "-startdate", "-in"])
        .arg(cert))
    .trim()
    .to_string()
}

#[test]
fn renew_rewrites_only_the_issue_date_and_the_next_build_reissues_the_certificates() {
    if !have_tool("openssl") {
        return;
    }
    let b = Built::seed_recipe();
    let before = std::fs::read_to_string(&b.recipe).expect("recipe");
    assert!(before.contains(&format!("{OLD}  # every validity window starts here")));
    std::fs::set_permissions(&b.recipe, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let cert = b.out("node1").join("node1.pem");
    let key = std::fs::read(b.out("node1").join("node1-key.pem")).expect("key");
    assert_eq!(not_before(&cert), "notBefore=Dec  1 00:00:00 2026 GMT");

    let out = ok(b.hardway("renew").args(["--date", "2027-06-01"]));
    assert!(
        out.contains("issue_date 2026-12-01T00:00:00Z -> 2027-06-01T00:00:00Z"),
        "{out}"
    );
    assert!(
        out.contains("the CA: valid 2027-06-01T00:00:00Z to 2032-05-30T00:00:00Z (43800 hours)")
            && out.contains("valid 2027-06-01T00:00:00Z to 2028-05-31T00:00:00Z (8760 hours)"),
        "{out}"
    );
    // Every byte but the date's is the same: comments, spacing, the other fields.
    let after = std::fs::read_to_string(&b.recipe).expect("recipe");
    assert_eq!(
        after,
        before.replace(OLD, "issue_date = 2027-06-01T00:00:00Z")
    );
    let (_, mode, _) = state(&b.recipe);
    assert_eq!(mode, 0o640, "the recipe's mode is kept");

    // What renew lists is exactly what the next build builds: certificates, kubeconfigs, overlays, bundles.
    let listed: BTreeSet<String> = out
        .lines()
        .skip_while(|l| !l.starts_with("re-issued with the new date"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect();
    for name in ["-ca", "-node1", "-admin-kubeconfig", "-master1-bundle"] {
        assert!(listed.iter().any(|l| l.ends_with(name)), "{name}: {out}");
    }
    assert!(
        !listed.iter().any(|l| l.ends_with("-key")),
        "keys do not depend on the date: {out}"
    );
    let build = run(&mut b.hardway("build"));
    assert!(build.status.success(), "{build:?}");
    let built: BTreeSet<String> = String::from_utf8_lossy(&build.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("built "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    assert_eq!(listed, built);

    assert_eq!(
        not_before(&b.out("node1").join("node1.pem")),
        "notBefore=Jun  1 00:00:00 2027 GMT"
    );
    assert_eq!(
        not_before(&b.out("ca").join("ca.pem")),
        "notBefore=Jun  1 00:00:00 2027 GMT"
    );
    assert_eq!(
        std::fs::read(b.out("node1").join("node1-key.pem")).expect("key"),
        key,
        "the key stays"
    );
}

#[test]
fn renew_dry_run_changes_nothing() {
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &seed_text());
    let before = state(&recipe);
    let out = ok(renew(
        &recipe,
        &["--date", "2027-06-01", "--dry-run", "--seed-file"],
    )
    .arg(&seed));
    assert!(
        out.contains("2026-12-01T00:00:00Z -> 2027-06-01T00:00:00Z")
            && out.contains("re-issued with the new date (")
            && out.contains("-node1-bundle")
            && out.contains("dry run"),
        "{out}"
    );
    assert_eq!(state(&recipe), before, "--dry-run changed the directory");
}

#[test]
fn renew_refuses_dates_the_recipe_cannot_take_and_leaves_it_untouched() {
    let t = TestDir::new();
    let text = seed_text();
    let recipe = t.write("r.toml", &text);
    let before = state(&recipe);
    let with_date = |date: &str| run(&mut renew(&recipe, &["--date", date]));

    // A real date, but certificates issued then would end after 9999-12-31: the recipe's own error, exit 1.
    let out = with_date("9999-01-01");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let place = format!("r.toml:{}:", line_of(&text, "issue_date = "));
    assert!(
        err.contains(&place)
            && err.contains("cluster.issue_date")
            && err.contains("would end after 9999-12-31")
            && err.contains("unchanged"),
        "{err}"
    );
    assert_eq!(state(&recipe), before);

    // Not dates at all: usage errors, exit 2.
    for (date, words) in [
        ("2026-02-30", "month 2 of 2026 has 28 days"),
        ("2026-13-01", "not a date"),
        ("1.12.2026", "not a date"),
    ] {
        let out = with_date(date);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{date}: {err}");
        assert!(err.contains(words), "{date}: {err}");
        assert_eq!(state(&recipe), before, "{date}");
    }
}

#[test]
fn renew_to_the_same_date_has_nothing_to_do() {
    let t = TestDir::new();
    let recipe = t.write("r.toml", &seed_text());
    let before = state(&recipe);
    let out = ok(&mut renew(&recipe, &["--date", "2026-12-01"]));
    assert!(
        out.contains("already issue_date 2026-12-01T00:00:00Z; nothing to renew"),
        "{out}"
    );
    assert_eq!(state(&recipe), before);
}

#[test]
fn renew_of_a_bad_recipe_names_it_and_exits_1() {
    let t = TestDir::new();
    let text = seed_text().replace("10.128.15.223", "10.128.15.300");
    let recipe = t.write("r.toml", &text);
    let before = state(&recipe);
    let out = run(&mut renew(&recipe, &["--date", "2027-06-01"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let place = format!("r.toml:{}:", line_of(&text, "10.128.15.300"));
    assert!(err.contains(&place) && err.contains("hosts[2].ip"), "{err}");
    assert_eq!(state(&recipe), before);
}

#[test]
fn renew_without_a_seed_renews_and_says_the_list_needs_it() {
    let t = TestDir::new();
    let text = seed_text();
    let recipe = t.write("r.toml", &text);
    let out = ok(&mut renew(&recipe, &["--date", "2027-06-01"]));
    assert!(
        out.contains("listed only with the seed") && out.contains("no seed at"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&recipe).expect("recipe"),
        text.replace(OLD, "issue_date = 2027-06-01T00:00:00Z")
    );
    assert!(!t.join("secrets").exists(), "renew creates no seed");
}

#[test]
fn renew_defaults_to_today_utc() {
    let t = TestDir::new();
    let recipe = t.write("r.toml", &seed_text());
    let today = || ok(std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]));
    let (first, out) = (today(), ok(&mut renew(&recipe, &[])));
    let last = today();
    let text = std::fs::read_to_string(&recipe).expect("recipe");
    assert!(
        [first, last]
            .iter()
            .any(|d| text.contains(&format!("issue_date = {}T00:00:00Z", d.trim()))),
        "{out}"
    );
}
