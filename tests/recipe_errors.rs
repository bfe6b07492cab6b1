//! Bad recipes: every validation rule gives file:line:column and the field, exits non-zero, writes nothing.

use crate::util::*;

fn seed_recipe() -> String {
    seed_text()
}

#[test]
fn duplicate_host_name() {
    let text = seed_recipe().replace("name = \"master2\"", "name = \"master1\"");
    let needle = "name = \"master1\"\nip = \"10.128.15.222\"";
    assert_rejected(&text, needle, "hosts[1].name", "duplicate host name");
}

#[test]
fn duplicate_ip() {
    let text = seed_recipe().replace("10.128.15.224", "10.128.15.223");
    // The error points at the second occurrence: the line after node2's name.
    assert_rejected_at(
        &text,
        line_of(&text, "node2\"\nip") + 1,
        "hosts[3].ip",
        "duplicate IP",
    );
}

#[test]
fn invalid_ip() {
    let text = seed_recipe().replace("10.128.15.223", "10.128.15.300");
    assert_rejected(&text, "10.128.15.300", "hosts[2].ip", "not an IP address");
}

#[test]
fn invalid_cidr() {
    let text = seed_recipe().replace("10.200.0.0/16", "10.200.0.0/40");
    assert_rejected(&text, "10.200.0.0/40", "cluster.cluster_cidr", "not a CIDR");
}

#[test]
fn cidr_with_host_bits() {
    let text = seed_recipe().replace("10.200.0.0/16", "10.200.3.0/16");
    assert_rejected(
        &text,
        "10.200.3.0/16",
        "cluster.cluster_cidr",
        "did you mean 10.200.0.0/16",
    );
}

#[test]
fn service_cidr_without_room() {
    let text = seed_recipe().replace("10.32.0.0/24", "10.32.0.0/30");
    assert_rejected(&text, "10.32.0.0/30", "cluster.service_cidr", "no room");
}

#[test]
fn overlapping_networks() {
    let text = seed_recipe().replace("10.200.0.0/16", "10.32.0.0/16");
    assert_rejected(&text, "10.32.0.0/16", "cluster.cluster_cidr", "overlaps");
}

#[test]
fn no_master() {
    let text = seed_recipe().replace("role = \"master\"", "role = \"worker\"");
    assert_rejected(
        &text,
        "name = \"master1\"",
        "hosts",
        "no host has role \"master\"",
    );
}

#[test]
fn unknown_role() {
    let text = seed_recipe().replacen("role = \"worker\"", "role = \"minion\"", 1);
    assert_rejected(&text, "\"minion\"", "hosts[2].role", "unknown role");
}

#[test]
fn unknown_algorithm() {
    let text = seed_recipe().replace("\"rsa-2048\"", "\"rsa-1024\"");
    assert_rejected(&text, "rsa-1024", "pki.algorithm", "unknown algorithm");
}

#[test]
fn unknown_provider() {
    let text = seed_recipe().replace("provider = \"aescbc\"", "provider = \"rot13\"");
    assert_rejected(&text, "rot13", "encryption.provider", "unknown provider");
}

#[test]
fn host_name_not_a_dns_label() {
    for bad in ["Node_1", "-node", "node1.example", "UPPER"] {
        let text = seed_recipe().replace("name = \"node1\"", &format!("name = \"{bad}\""));
        assert_rejected(
            &text,
            &format!("\"{bad}\""),
            "hosts[2].name",
            "not a valid DNS label",
        );
    }
}

#[test]
fn several_masters_need_a_load_balancer() {
    let text = seed_recipe().replace("role = \"load-balancer\"", "role = \"worker\"");
    assert_rejected(&text, "name = \"master1\"", "hosts", "load-balancer");
}

#[test]
fn one_master_needs_no_load_balancer() {
    let text = seed_recipe()
        .replace("role = \"load-balancer\"", "role = \"worker\"")
        .replace(
            "name = \"master2\"\nip = \"10.128.15.222\"\nrole = \"master\"",
            "name = \"master2\"\nip = \"10.128.15.222\"\nrole = \"worker\"",
        );
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &text);
    ok(hardway()
        .current_dir(t.path())
        .arg("build")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(&seed));
}

#[test]
fn unknown_key_is_refused() {
    let text = seed_recipe().replace(
        "domain = \"cluster.local\"",
        "domain = \"cluster.local\"\ndomian = \"typo\"",
    );
    assert_rejected(&text, "domian", "", "unknown field `domian`");
}

#[test]
fn toml_syntax_error_has_a_place() {
    let text = seed_recipe().replace(
        "cluster_cidr = \"10.200.0.0/16\"",
        "cluster_cidr = \"10.200.0.0/16",
    );
    assert_rejected(&text, "cluster_cidr = ", "", "");
}

#[test]
fn issue_date_needs_a_time_and_offset() {
    let text = seed_recipe().replace("2026-12-01T00:00:00Z", "2026-12-01");
    assert_rejected(&text, "issue_date = 2026", "cluster.issue_date", "offset");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = seed_recipe()
        .replace("10.128.15.223", "bad-ip")
        .replace("\"rsa-2048\"", "\"dsa\"");
    let t = TestDir::new();
    let recipe = t.write("r.toml", &text);
    let err = fails(hardway().current_dir(t.path()).arg("build").arg(&recipe));
    assert!(
        err.contains("hosts[2].ip") && err.contains("pki.algorithm"),
        "{err}"
    );
}

#[test]
fn host_names_that_clash_with_generated_artifacts_are_refused() {
    // A worker named "node1-key" would make a certificate named like node1's key derivation.
    let text = seed_recipe().replace("name = \"node2\"", "name = \"node1-key\"");
    let t = TestDir::new();
    let seed = t.test_seed();
    let recipe = t.write("r.toml", &text);
    let err = fails(
        hardway()
            .current_dir(t.path())
            .arg("build")
            .arg(&recipe)
            .arg("--seed-file")
            .arg(&seed),
    );
    assert!(
        err.contains("\"node1-key\"") && err.contains("rename the host"),
        "{err}"
    );
    assert!(
        !t.join("store").exists() && !t.join("out").exists(),
        "nothing may be written"
    );
}

#[test]
fn a_name_clash_names_the_line_of_the_host_or_user_that_makes_it() {
    let users = "\n[[pki.users]]\nname = \"alice\"\n\n[[pki.users]]\nname = \"alice-key\"\n";
    for (text, needle, field, clash, first) in [
        // node1's key is the derivation node1-key; a worker node1-key makes its certificate of that name.
        (
            seed_recipe().replace("name = \"node2\"", "name = \"node1-key\""),
            "name = \"node1-key\"",
            "hosts[3].name",
            "node1-key",
            "hosts[2] (\"node1\")",
        ),
        // admin-remote.kubeconfig is the cluster's; a worker's kubeconfig is <name>-kubeconfig.
        (
            seed_recipe().replace("name = \"node2\"", "name = \"admin-remote\""),
            "name = \"admin-remote\"",
            "hosts[3].name",
            "admin-remote-kubeconfig",
            "the cluster's built-in artifacts",
        ),
        // user-alice's key is user-alice-key, the certificate of the user alice-key.
        (
            format!("{}{users}", seed_recipe()),
            "name = \"alice-key\"",
            "pki.users[1].name",
            "user-alice-key",
            "pki.users[0] (\"alice\")",
        ),
    ] {
        let kind = if field.starts_with("hosts") {
            "host"
        } else {
            "user"
        };
        let words = format!(
            "two artifacts would both be named \"{clash}\": this {kind} makes one and {first} the other"
        );
        assert_rejected(&text, needle, field, &words);
    }
}

#[test]
fn host_addresses_nobody_can_reach() {
    for (ip, words) in [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.5", "loopback"),
        ("255.255.255.255", "broadcast"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
    ] {
        let text = seed_recipe().replace("10.128.15.224", ip);
        assert_rejected(&text, &format!("ip = \"{ip}\""), "hosts[3].ip", words);
    }
}

#[test]
fn loopback_hosts_need_the_lab_switch() {
    let text = seed_recipe().replace("10.128.15.224", "127.0.0.5");
    let lab = text.replace("issue_date = ", "loopback_lab = true\nissue_date = ");
    let t = TestDir::new();
    let recipe = t.write("r.toml", &lab);
    let out = run(hardway()
        .current_dir(t.path())
        .arg("show")
        .arg(&recipe)
        .arg("--seed-file")
        .arg(t.test_seed()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("loopback"),
        "loopback_lab = true still refused: {err}"
    );
}

#[test]
fn an_ipv4_mapped_address_is_the_same_host() {
    let text = seed_recipe().replace("10.128.15.224", "::ffff:10.128.15.223");
    assert_rejected(
        &text,
        "ip = \"::ffff:10.128.15.223\"",
        "hosts[3].ip",
        "duplicate IP 10.128.15.223",
    );
}

#[test]
fn kubeconfig_server_without_a_port() {
    let text = seed_recipe().replace(
        "[pki]",
        "[kubeconfigs.servers]\nadmin-remote = \"https://10.128.15.226\"\n\n[pki]",
    );
    assert_rejected(
        &text,
        "admin-remote = ",
        "kubeconfigs.servers.admin-remote",
        "port is required",
    );
}

#[test]
fn kubeconfig_server_that_is_not_a_san() {
    let text = seed_recipe().replace(
        "[pki]",
        "[kubeconfigs.servers]\nadmin-remote = \"https://api.example.internal:6443\"\n\n[pki]",
    );
    assert_rejected(
        &text,
        "admin-remote = ",
        "kubeconfigs.servers.admin-remote",
        "api.example.internal is not a name or address of the API server certificate",
    );
}

#[test]
fn an_issue_date_whose_certificates_would_outlive_9999() {
    let text = seed_recipe().replace(
        "issue_date = 2026-12-01T00:00:00Z",
        "issue_date = 9998-06-01T00:00:00Z",
    );
    assert_rejected(
        &text,
        "issue_date = 9998",
        "cluster.issue_date",
        "would end after 9999-12-31",
    );
}

#[test]
fn a_recipe_that_is_not_utf8_names_the_line() {
    let t = TestDir::new();
    let mut bytes = seed_recipe().into_bytes();
    let at = seed_recipe().find("Portland").expect("locality");
    bytes[at] = 0xff;
    let recipe = t.join("r.toml");
    std::fs::write(&recipe, &bytes).expect("write");
    let line = line_of(&seed_recipe(), "Portland");
    let err = fails(hardway().current_dir(t.path()).arg("build").arg(&recipe));
    assert!(err.contains(&format!("r.toml:{line}:")), "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    assert!(!t.join("store").exists());
}
