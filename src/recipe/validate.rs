//! From TOML text to a [`Recipe`]: syntax first, then meaning. Collects every problem, each with its place.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;

use super::raw::{RawHost, RawRecipe};
use super::{
    AltName, BUILTIN_CERTIFICATES, Cidr, Cluster, Encryption, EncryptionKey, Etcd, EtcdPki, Host,
    Maker, Pki, PkiUser, Problem, Provider, Recipe, Role, SshTarget, Subject,
};
use crate::keys::Algorithm;

/// The smallest service network: it must hold the API service IP (first address) and cluster DNS (tenth).
const MIN_SERVICE_HOST_BITS: u8 = 4;

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.problems.push(Problem {
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

pub fn parse(text: &str) -> Result<Recipe, Vec<Problem>> {
    let raw: RawRecipe = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
        vec![Problem {
            line,
            column,
            field: String::new(),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut c = Checker {
        text,
        problems: Vec::new(),
    };
    let recipe = check(&mut c, raw);
    if c.problems.is_empty() {
        recipe.ok_or_else(Vec::new)
    } else {
        Err(c.problems)
    }
}

fn check(c: &mut Checker, raw: RawRecipe) -> Option<Recipe> {
    let cl = &raw.cluster;
    let name = cl.name.get_ref().clone();
    if !is_dns_label(&name) {
        c.at(cl.name.span(), "cluster.name", dns_label_message(&name));
    }
    let domain = cl
        .domain
        .as_ref()
        .map_or_else(|| "cluster.local".to_string(), |d| d.get_ref().clone());
    if let Some(d) = &cl.domain
        && !domain.split('.').all(is_dns_label)
    {
        c.at(
            d.span(),
            "cluster.domain",
            format!(
                "{domain:?} is not a DNS domain (labels of a-z, 0-9 and '-', separated by dots)"
            ),
        );
    }
    let service_cidr = cidr(c, &cl.service_cidr, "cluster.service_cidr");
    if let Some(s) = service_cidr
        && s.host_bits() < MIN_SERVICE_HOST_BITS
    {
        c.at(
            cl.service_cidr.span(),
            "cluster.service_cidr",
            format!(
                "{s} has no room: it must hold the API service IP (first address) and the cluster DNS IP \
                 (tenth address); use a /{} or larger",
                s.host_bits_max() - MIN_SERVICE_HOST_BITS
            ),
        );
    }
    let cluster_cidr = cidr(c, &cl.cluster_cidr, "cluster.cluster_cidr");
    if let (Some(s), Some(p)) = (service_cidr, cluster_cidr)
        && s.overlaps(&p)
    {
        c.at(
            cl.cluster_cidr.span(),
            "cluster.cluster_cidr",
            format!("{p} overlaps the service network {s}"),
        );
    }
    let issue = issue_date(c, &cl.issue_date);

    let pki = check_pki(c, &raw);
    let encryption = check_encryption(c, &raw);
    let hosts = check_hosts(
        c,
        &raw.hosts,
        &[service_cidr, cluster_cidr],
        raw.cluster.loopback_lab,
    );
    let kubeconfig_servers = check_servers(c, &raw);
    let etcd = check_etcd(c, &raw);

    let (issue_date, issue_date_text) = issue?;
    if let Some(p) = &pki {
        // X.509 times end with 9999-12-31T23:59:59Z.
        let hours = p.ca_validity_hours.max(p.validity_hours);
        if issue_date + (hours as i64) * 3600 > 253_402_300_799 {
            c.at(
                cl.issue_date.span(),
                "cluster.issue_date",
                format!(
                    "certificates issued then for {hours} hours would end after 9999-12-31, the last date a \
                     certificate can carry: choose an earlier issue_date or shorter validity_hours"
                ),
            );
            return None;
        }
    }
    if let (Some(p), Some(svc)) = (&pki, service_cidr) {
        check_servers_are_sans(c, &raw, &hosts, p, svc, &domain);
    }
    let recipe = Recipe {
        cluster: Cluster {
            name,
            domain,
            service_cidr: service_cidr?,
            cluster_cidr: cluster_cidr?,
            issue_date,
            issue_date_text,
        },
        pki: pki?,
        encryption: encryption?,
        hosts,
        kubeconfig_servers,
        etcd: etcd?,
    };
    // Only a recipe without other problems has every host and user of the file, at the same index.
    if c.problems.is_empty() {
        check_name_clashes(c, &raw, &recipe);
    }
    Some(recipe)
}

/// A host or user whose name would make a derivation named like one already made (by the cluster, or by a host
/// or user before it): the plan could not tell them apart. Points at that host's or user's name.
fn check_name_clashes(c: &mut Checker, raw: &RawRecipe, recipe: &Recipe) {
    let describe = |m: Maker| match m {
        Maker::Cluster => "the cluster's built-in artifacts".to_string(),
        Maker::Host(i) => format!("hosts[{i}] ({:?})", recipe.hosts[i].name),
        Maker::User(i) => format!("pki.users[{i}] ({:?})", recipe.pki.users[i].name),
    };
    for (name, maker, first) in recipe.name_clashes() {
        let (span, field, kind) = match maker {
            Maker::Host(i) => (raw.hosts[i].name.span(), format!("hosts[{i}].name"), "host"),
            Maker::User(i) => (
                raw.pki.users[i].name.span(),
                format!("pki.users[{i}].name"),
                "user",
            ),
            // The cluster's names come first: a clash is always a later maker's.
            Maker::Cluster => continue,
        };
        c.at(
            span,
            field,
            format!(
                "two artifacts would both be named {name:?}: this {kind} makes one and {} the other; rename the \
                 {kind} (names like <host>-key, <host>-kubeconfig, <host>-overlay, <host>-bundle, \
                 <host>-etcd-unit, <host>-nginx-stream, user-<name> and the built-in certificate names are taken)",
                describe(first)
            ),
        );
    }
}

/// Why an address cannot be a host's, if it cannot: unspecified, loopback, broadcast, multicast.
fn unusable_host_ip(ip: IpAddr, loopback_lab: bool) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if ip.is_unspecified() {
        return Some("is the unspecified address");
    }
    if ip.is_loopback() && !loopback_lab {
        return Some(
            "is a loopback address (for a single-machine lab, set `loopback_lab = true` in [cluster])",
        );
    }
    if ip.is_multicast() {
        return Some("is a multicast address");
    }
    if let IpAddr::V4(v4) = ip
        && v4.is_broadcast()
    {
        return Some("is the broadcast address");
    }
    None
}

/// A SHA-256 pin: 64 hex digits (an optional `sha256:` prefix is accepted).
fn sha256_pin(text: &str) -> Result<[u8; 32], String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not a SHA-256 (64 hex digits)"));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// `[etcd]`: version, mirrors, the pin, member pins, the certificate layout. `Some(None)`: no etcd.
fn check_etcd(c: &mut Checker, raw: &RawRecipe) -> Option<Option<Etcd>> {
    let Some(e) = &raw.etcd else {
        return Some(None);
    };
    let before = c.problems.len();
    let version = e.version.get_ref().clone();
    let parts: Vec<&str> = version.split('.').collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    let numbers = match numbers {
        Some(n) if n.len() == 3 && parts.iter().all(|p| !p.starts_with('+')) => n,
        _ => {
            c.at(
                e.version.span(),
                "etcd.version",
                format!("{version:?} is not a release number like 3.5.21 (no leading v)"),
            );
            Vec::new()
        }
    };
    if e.urls.get_ref().is_empty() {
        c.at(e.urls.span(), "etcd.urls", "needs at least one URL");
    }
    let mut urls = Vec::new();
    for (i, u) in e.urls.get_ref().iter().enumerate() {
        let text = u.get_ref();
        let ok = ["https://", "http://", "file:///"]
            .iter()
            .any(|p| text.strip_prefix(p).is_some_and(|r| !r.is_empty()))
            && !text.contains(char::is_whitespace);
        if ok {
            urls.push(text.clone());
        } else {
            c.at(
                u.span(),
                format!("etcd.urls[{i}]"),
                format!("{text:?} is not an https://, http:// or file:/// URL"),
            );
        }
    }
    let (sha256_line, _) = line_column(c.text, e.sha256.span().start);
    let sha256 = if e.sha256.get_ref().is_empty() {
        None
    } else {
        match sha256_pin(e.sha256.get_ref()) {
            Ok(h) => Some(h),
            Err(m) => {
                c.at(e.sha256.span(), "etcd.sha256", m);
                None
            }
        }
    };
    let mut binaries = vec!["etcd".to_string(), "etcdctl".to_string()];
    if numbers.as_slice() >= [3, 5, 0].as_slice() {
        binaries.push("etcdutl".to_string());
    }
    let mut members = BTreeMap::new();
    for (name, pin) in &e.members {
        let field = format!("etcd.members.{name}");
        if !binaries.contains(name) {
            c.at(
                pin.span(),
                field,
                format!(
                    "etcd v{version} ships no {name:?} that hardway installs; expected one of {}",
                    binaries.join(", ")
                ),
            );
            continue;
        }
        match sha256_pin(pin.get_ref()) {
            Ok(h) => {
                members.insert(name.clone(), h);
            }
            Err(m) => c.at(pin.span(), field, m),
        }
    }
    let pki = match e.pki.as_ref().map(|p| (p, p.get_ref().as_str())) {
        None | Some((_, "tutorial")) => EtcdPki::Tutorial,
        Some((_, "kubeadm")) => EtcdPki::Kubeadm,
        Some((p, other)) => {
            c.at(
                p.span(),
                "etcd.pki",
                format!("{other:?} is not a layout; expected \"tutorial\" or \"kubeadm\""),
            );
            EtcdPki::Tutorial
        }
    };
    if c.problems.len() > before {
        return None;
    }
    Some(Some(Etcd {
        version,
        urls,
        sha256,
        sha256_line,
        binaries,
        members,
        pki,
    }))
}

/// `[kubeconfigs.servers]`: component → `https://host:port` URL.
fn check_servers(c: &mut Checker, raw: &RawRecipe) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (component, url) in &raw.kubeconfigs.servers {
        let field = format!("kubeconfigs.servers.{component}");
        if !super::KUBECONFIG_COMPONENTS.contains(&component.as_str()) {
            c.at(
                url.span(),
                field,
                format!(
                    "unknown component; expected one of {}",
                    super::KUBECONFIG_COMPONENTS.join(", ")
                ),
            );
            continue;
        }
        let u = url.get_ref();
        let ok = u.strip_prefix("https://").is_some_and(|rest| {
            !rest.is_empty()
                && !rest.contains(char::is_whitespace)
                && !rest.contains('/')
                && server_host_port(rest).is_some()
        });
        if ok {
            out.insert(component.clone(), u.clone());
        } else {
            c.at(
                url.span(),
                field,
                format!("{u:?} is not an https://host:port URL (the port is required, e.g. :6443)"),
            );
        }
    }
    out
}

/// `host:port` or `[v6]:port` → (host, port).
fn server_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:")?,
        None => authority.rsplit_once(':')?,
    };
    if host.is_empty()
        || (authority.starts_with('[') && host.parse::<std::net::Ipv6Addr>().is_err())
    {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// Each `[kubeconfigs.servers]` URL's host must be a SAN of the API server certificate (the same names and
/// addresses the PKI puts there), or clients refuse the server.
fn check_servers_are_sans(
    c: &mut Checker,
    raw: &RawRecipe,
    hosts: &[Host],
    pki: &Pki,
    service: Cidr,
    domain: &str,
) {
    let mut names: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push(format!("kubernetes.default.svc.{domain}"));
    let mut ips: Vec<IpAddr> = vec![IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];
    ips.extend(service.nth(1));
    for h in hosts.iter().filter(|h| h.role != Role::Worker) {
        names.push(h.name.clone());
        ips.push(h.ip);
    }
    for s in &pki.extra_sans {
        match s {
            AltName::Dns(d) => names.push(d.clone()),
            AltName::Ip(ip) => ips.push(*ip),
        }
    }
    for (component, url) in &raw.kubeconfigs.servers {
        let Some((host, _)) = url
            .get_ref()
            .strip_prefix("https://")
            .and_then(server_host_port)
        else {
            continue;
        };
        let covered = match host.parse::<IpAddr>() {
            Ok(ip) => ips.contains(&ip.to_canonical()),
            Err(_) => names.iter().any(|n| n == host),
        };
        if !covered {
            c.at(
                url.span(),
                format!("kubeconfigs.servers.{component}"),
                format!(
                    "{host} is not a name or address of the API server certificate (its SANs: the masters, the \
                     load balancer, the service IP, localhost, the in-cluster names): add it to pki.extra_sans"
                ),
            );
        }
    }
}

impl Cidr {
    fn host_bits_max(&self) -> u8 {
        self.prefix() + self.host_bits()
    }
}

fn cidr(c: &mut Checker, s: &Spanned<String>, field: &str) -> Option<Cidr> {
    Cidr::parse(s.get_ref())
        .map_err(|e| c.at(s.span(), field, e))
        .ok()
}

fn issue_date(c: &mut Checker, d: &Spanned<toml::value::Datetime>) -> Option<(i64, String)> {
    let dt = d.get_ref();
    let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
        c.at(
            d.span(),
            "cluster.issue_date",
            format!("{dt} must be a full date and time with an offset, e.g. 2026-01-01T00:00:00Z"),
        );
        return None;
    };
    if time.nanosecond.unwrap_or(0) != 0 {
        c.at(
            d.span(),
            "cluster.issue_date",
            "certificates carry whole seconds: drop the fraction",
        );
        return None;
    }
    let offset_minutes = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(
        i64::from(date.year),
        u32::from(date.month),
        u32::from(date.day),
    );
    let secs = days * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second.unwrap_or(0))
        - offset_minutes * 60;
    // X.509 UTCTime/GeneralizedTime handle 0001..9999; certificates before 1970 make no sense here.
    if !(0..253_402_300_800).contains(&secs) {
        c.at(
            d.span(),
            "cluster.issue_date",
            "must lie between 1970 and 9999",
        );
        return None;
    }
    Some((secs, dt.to_string()))
}

/// `YYYY-MM-DD` (UTC) of a Unix time: the inverse of [`days_from_civil`] (Howard Hinnant's algorithm).
pub fn civil_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn hours(c: &mut Checker, v: &Option<Spanned<i64>>, field: &str, default: u64) -> Option<u64> {
    match v {
        None => Some(default),
        Some(h) => match u64::try_from(*h.get_ref()) {
            Ok(n) if (1..=876_000).contains(&n) => Some(n),
            _ => {
                c.at(
                    h.span(),
                    field,
                    "must be a number of hours between 1 and 876000 (100 years)",
                );
                None
            }
        },
    }
}

fn parse_algorithm(c: &mut Checker, a: &Spanned<String>, field: &str) -> Option<Algorithm> {
    a.get_ref()
        .parse::<Algorithm>()
        .map_err(|_| {
            let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
            c.at(
                a.span(),
                field,
                format!(
                    "unknown algorithm {:?}; expected one of {}",
                    a.get_ref(),
                    names.join(", ")
                ),
            );
        })
        .ok()
}

/// Upper bounds of X.520 attribute lengths (RFC 5280 appendix A.1) for the shared subject attributes.
const SUBJECT_LIMITS: [(&str, usize); 4] = [
    ("country", 2),
    ("state", 128),
    ("locality", 128),
    ("organizational_unit", 64),
];

fn check_pki(c: &mut Checker, raw: &RawRecipe) -> Option<Pki> {
    let p = &raw.pki;
    let algorithm = match &p.algorithm {
        None => Some(Algorithm::Rsa2048),
        Some(a) => parse_algorithm(c, a, "pki.algorithm"),
    };
    let ca_validity_hours = hours(c, &p.ca_validity_hours, "pki.ca_validity_hours", 43_800);
    let validity_hours = hours(c, &p.validity_hours, "pki.validity_hours", 8_760);
    if let (Some(ca), Some(leaf)) = (ca_validity_hours, validity_hours)
        && leaf > ca
    {
        let (span, field) = match (&p.validity_hours, &p.ca_validity_hours) {
            (Some(v), _) => (v.span(), "pki.validity_hours"),
            (None, Some(v)) => (v.span(), "pki.ca_validity_hours"),
            (None, None) => (0..0, "pki.validity_hours"),
        };
        c.at(
            span,
            field,
            format!(
                "certificates valid {leaf} hours would outlive their CA (pki.ca_validity_hours = {ca})"
            ),
        );
    }
    let subject = check_subject(c, raw);
    let extra_sans = check_extra_sans(c, raw);
    let (users, cert_names) = check_users(c, raw);
    let mut ok = users.is_some() && extra_sans.is_some();
    let known = |c: &mut Checker, name: &str, span: Range<usize>, field: &str| -> bool {
        if cert_names.contains(name) {
            return true;
        }
        c.at(
            span,
            field,
            format!(
                "no certificate is named {name:?}; expected one of {}",
                cert_names.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
        false
    };
    let mut algorithms = BTreeMap::new();
    for (name, a) in &p.algorithms {
        let field = format!("pki.algorithms.{name}");
        if !known(c, name, a.span(), &field) {
            ok = false;
        } else if let Some(alg) = parse_algorithm(c, a, &field) {
            algorithms.insert(name.clone(), alg);
        } else {
            ok = false;
        }
    }
    let mut generations = BTreeMap::new();
    for (name, g) in &p.generations {
        let field = format!("pki.generations.{name}");
        if !known(c, name, g.span(), &field) {
            ok = false;
            continue;
        }
        match u64::try_from(*g.get_ref()) {
            Ok(n) if n >= 1 => {
                generations.insert(name.clone(), n);
            }
            _ => {
                c.at(g.span(), field, "must be a positive integer");
                ok = false;
            }
        }
    }
    ok.then_some(())?;
    Some(Pki {
        algorithm: algorithm?,
        ca_validity_hours: ca_validity_hours?,
        validity_hours: validity_hours?,
        subject: subject?,
        extra_sans: extra_sans?,
        users: users?,
        algorithms,
        generations,
    })
}

fn check_subject(c: &mut Checker, raw: &RawRecipe) -> Option<Subject> {
    let s = &raw.pki.subject;
    let mut ok = true;
    let mut value = |v: &Option<Spanned<String>>, key: &str, default: &str| -> String {
        let Some(v) = v else {
            return default.to_string();
        };
        let text = v.get_ref();
        let limit = SUBJECT_LIMITS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(64, |(_, n)| *n);
        let field = format!("pki.subject.{key}");
        if key == "country"
            && !text.is_empty()
            && !(text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()))
        {
            c.at(
                v.span(),
                field,
                format!(
                    "{text:?} is not a two-letter country code (ISO 3166, e.g. \"US\"); use \"\" to leave \
                     it out"
                ),
            );
            ok = false;
        } else if text.chars().count() > limit || text.chars().any(char::is_control) {
            c.at(
                v.span(),
                field,
                format!("must be at most {limit} characters without control characters"),
            );
            ok = false;
        }
        text.clone()
    };
    let subject = Subject {
        country: value(&s.country, "country", "US"),
        state: value(&s.state, "state", "Oregon"),
        locality: value(&s.locality, "locality", "Portland"),
        organizational_unit: value(
            &s.organizational_unit,
            "organizational_unit",
            "Kubernetes The Hard Way",
        ),
    };
    ok.then_some(subject)
}

/// `pki.extra_sans`: IP addresses or DNS names, no repeats.
fn check_extra_sans(c: &mut Checker, raw: &RawRecipe) -> Option<Vec<AltName>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, s) in raw.pki.extra_sans.iter().enumerate() {
        let field = format!("pki.extra_sans[{i}]");
        let text = s.get_ref();
        let name = match text.parse::<IpAddr>() {
            Ok(ip) => AltName::Ip(ip),
            Err(_) if is_dns_name(text) => AltName::Dns(text.clone()),
            Err(_) => {
                c.at(
                    s.span(),
                    field,
                    format!(
                        "{text:?} is neither an IP address nor a DNS name (lowercase labels of a-z, 0-9 and '-', \
                         separated by dots, at most 253 characters)"
                    ),
                );
                ok = false;
                continue;
            }
        };
        if out.contains(&name) {
            c.at(s.span(), field, format!("duplicate SAN {text:?}"));
            ok = false;
        } else {
            out.push(name);
        }
    }
    ok.then_some(out)
}

/// A DNS name: dot-separated RFC 1123 labels, lowercase, at most 253 characters.
fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// `[[pki.users]]`, and the base names of every certificate the recipe makes (for the per-certificate tables).
/// Also refuses a worker named like a built-in certificate, or in the kubeadm etcd layout like one of etcd's:
/// its certificate would take that name.
fn check_users(
    c: &mut Checker,
    raw: &RawRecipe,
) -> (Option<Vec<PkiUser>>, std::collections::BTreeSet<String>) {
    let mut names: std::collections::BTreeSet<String> =
        BUILTIN_CERTIFICATES.iter().map(|s| s.to_string()).collect();
    // `[etcd] pki = "kubeadm"` adds etcd's certificates (artifacts::pki::certificates): etcd-ca,
    // apiserver-etcd-client, and etcd-server-<master> and etcd-peer-<master> per master.
    let kubeadm = raw
        .etcd
        .as_ref()
        .and_then(|e| e.pki.as_ref())
        .is_some_and(|p| p.get_ref() == "kubeadm");
    let mut etcd_names = std::collections::BTreeSet::new();
    if kubeadm {
        etcd_names.extend(["etcd-ca".to_string(), "apiserver-etcd-client".to_string()]);
        for h in raw.hosts.iter().filter(|h| h.role.get_ref() == "master") {
            let m = h.name.get_ref();
            etcd_names.extend([format!("etcd-server-{m}"), format!("etcd-peer-{m}")]);
        }
        names.extend(etcd_names.iter().cloned());
    }
    let mut ok = true;
    for (i, h) in raw.hosts.iter().enumerate() {
        let name = h.name.get_ref();
        if h.role.get_ref() != "worker" || !is_dns_label(name) {
            continue;
        }
        if BUILTIN_CERTIFICATES.contains(&name.as_str()) {
            c.at(
                h.name.span(),
                format!("hosts[{i}].name"),
                format!(
                    "a worker may not be named {name:?}: its certificate ({name}.pem) would clash with the \
                     built-in certificate of that name"
                ),
            );
            ok = false;
        } else if etcd_names.contains(name) {
            c.at(
                h.name.span(),
                format!("hosts[{i}].name"),
                format!(
                    "a worker may not be named {name:?}: its certificate ({name}.pem) would clash with etcd's \
                     certificate of that name (etcd.pki = \"kubeadm\")"
                ),
            );
            ok = false;
        }
        names.insert(name.clone());
    }
    let mut users: Vec<PkiUser> = Vec::new();
    for (i, u) in raw.pki.users.iter().enumerate() {
        let name = u.name.get_ref();
        let field = format!("pki.users[{i}].name");
        if !is_user_name(name) {
            c.at(
                u.name.span(),
                field,
                format!(
                    "{name:?} is not a valid user name: use 1-63 lowercase letters, digits, '-' and '.', starting \
                     and ending with a letter or digit"
                ),
            );
            ok = false;
            continue;
        }
        let user = PkiUser {
            name: name.clone(),
            groups: u.groups.iter().map(|g| g.get_ref().clone()).collect(),
        };
        if users.iter().any(|other| other.name == *name) {
            c.at(u.name.span(), field, format!("duplicate user {name:?}"));
            ok = false;
            continue;
        }
        if !names.insert(user.cert_name()) {
            c.at(
                u.name.span(),
                field,
                format!(
                    "its certificate {:?} clashes with a worker's",
                    user.cert_name()
                ),
            );
            ok = false;
        }
        for (j, g) in u.groups.iter().enumerate() {
            let text = g.get_ref();
            let field = format!("pki.users[{i}].groups[{j}]");
            if j > 0 {
                // rcgen 0.14 keeps one value per subject attribute (rustls/rcgen#81): one O, so one group.
                c.at(
                    g.span(),
                    field,
                    "at most one group per user: the certificate library writes one O attribute per subject; \
                     bind further roles to the user name with RBAC",
                );
                ok = false;
            } else if text.is_empty()
                || text.chars().count() > 64
                || text.chars().any(char::is_control)
            {
                c.at(
                    g.span(),
                    field,
                    "a group is 1-64 characters without control characters",
                );
                ok = false;
            }
        }
        users.push(user);
    }
    (ok.then_some(users), names)
}

/// A user name: lowercase letters, digits, '-' and '.', 1-63 characters, alphanumeric at both ends.
fn is_user_name(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| alnum(b) || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}

fn check_encryption(c: &mut Checker, raw: &RawRecipe) -> Option<Encryption> {
    let e = &raw.encryption;
    let provider = match &e.provider {
        None => Some(Provider::Aescbc),
        Some(p) => match p.get_ref().as_str() {
            "aescbc" => Some(Provider::Aescbc),
            "aesgcm" => Some(Provider::Aesgcm),
            "secretbox" => Some(Provider::Secretbox),
            "identity" => Some(Provider::Identity),
            other => {
                c.at(
                    p.span(),
                    "encryption.provider",
                    format!(
                        "unknown provider {other:?}; expected one of {}",
                        Provider::NAMES.join(", ")
                    ),
                );
                None
            }
        },
    };
    let mut keys = Vec::new();
    let mut ok = true;
    match &e.keys {
        None => keys.push(EncryptionKey {
            name: "key1".into(),
            generation: 1,
        }),
        Some(list) => {
            if list.get_ref().is_empty() && provider != Some(Provider::Identity) {
                c.at(
                    list.span(),
                    "encryption.keys",
                    "needs at least one key (the first one encrypts)",
                );
                ok = false;
            }
            let mut seen = BTreeMap::new();
            for (i, k) in list.get_ref().iter().enumerate() {
                let name = k.name.get_ref();
                if !is_dns_label(name) {
                    c.at(
                        k.name.span(),
                        format!("encryption.keys[{i}].name"),
                        dns_label_message(name),
                    );
                    ok = false;
                }
                if seen.insert(name.clone(), i).is_some() {
                    c.at(
                        k.name.span(),
                        format!("encryption.keys[{i}].name"),
                        format!("duplicate key name {name:?}"),
                    );
                    ok = false;
                }
                match u64::try_from(*k.generation.get_ref()) {
                    Ok(g) if g >= 1 => keys.push(EncryptionKey {
                        name: name.clone(),
                        generation: g,
                    }),
                    _ => {
                        c.at(
                            k.generation.span(),
                            format!("encryption.keys[{i}].generation"),
                            "must be a positive integer",
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    ok.then_some(())?;
    Some(Encryption {
        provider: provider?,
        keys,
    })
}

fn check_hosts(
    c: &mut Checker,
    raw: &[RawHost],
    networks: &[Option<Cidr>],
    loopback_lab: bool,
) -> Vec<Host> {
    let mut hosts = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ips: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for (i, h) in raw.iter().enumerate() {
        let name = h.name.get_ref();
        if !is_dns_label(name) {
            c.at(
                h.name.span(),
                format!("hosts[{i}].name"),
                dns_label_message(name),
            );
        } else if let Some(first) = names.insert(name, i) {
            c.at(
                h.name.span(),
                format!("hosts[{i}].name"),
                format!("duplicate host name {name:?} (also hosts[{first}])"),
            );
        }
        let ip = match h.ip.get_ref().parse::<IpAddr>() {
            Ok(parsed) => {
                if let Some(why) = unusable_host_ip(parsed, loopback_lab) {
                    c.at(
                        h.ip.span(),
                        format!("hosts[{i}].ip"),
                        format!(
                            "{parsed} {why}: a host needs an address other machines can reach it at"
                        ),
                    );
                }
                // ::ffff:10.0.0.1 is 10.0.0.1: compare IPv4-mapped addresses as IPv4.
                let ip = parsed.to_canonical();
                if let Some(first) = ips.insert(ip, i) {
                    c.at(
                        h.ip.span(),
                        format!("hosts[{i}].ip"),
                        format!("duplicate IP {ip} (also hosts[{first}])"),
                    );
                }
                if let Some(n) = networks.iter().flatten().find(|n| n.contains(ip)) {
                    c.at(
                        h.ip.span(),
                        format!("hosts[{i}].ip"),
                        format!("{ip} lies inside the cluster's own network {n}"),
                    );
                }
                Some(ip)
            }
            Err(_) => {
                c.at(
                    h.ip.span(),
                    format!("hosts[{i}].ip"),
                    format!("{:?} is not an IP address", h.ip.get_ref()),
                );
                None
            }
        };
        let role = match h.role.get_ref().as_str() {
            "master" => Some(Role::Master),
            "worker" => Some(Role::Worker),
            "load-balancer" => Some(Role::LoadBalancer),
            other => {
                c.at(
                    h.role.span(),
                    format!("hosts[{i}].role"),
                    format!(
                        "unknown role {other:?}; expected one of {}",
                        Role::NAMES.join(", ")
                    ),
                );
                None
            }
        };
        let ssh = match &h.ssh {
            None => Some(None),
            Some(s) => match SshTarget::parse(s.get_ref()) {
                Ok(t) => Some(Some(t)),
                Err(message) => {
                    c.at(s.span(), format!("hosts[{i}].ssh"), message);
                    None
                }
            },
        };
        if let (Some(ip), Some(role), Some(ssh)) = (ip, role, ssh) {
            hosts.push(Host {
                name: name.clone(),
                ip,
                role,
                ssh,
            });
        }
    }
    // Whole-cluster rules point at the [[hosts]] list; with no hosts at all, at the start of the file.
    let anchor = raw.first().map_or(0..0, |h| h.name.span());
    let masters = raw.iter().filter(|h| h.role.get_ref() == "master").count();
    let lbs: Vec<&RawHost> = raw
        .iter()
        .filter(|h| h.role.get_ref() == "load-balancer")
        .collect();
    if masters == 0 {
        c.at(
            anchor.clone(),
            "hosts",
            "no host has role \"master\": a cluster needs at least one",
        );
    }
    if masters > 1 && lbs.is_empty() {
        c.at(
            anchor,
            "hosts",
            format!("{masters} masters need a host with role \"load-balancer\" in front of their API servers"),
        );
    }
    for extra in lbs.iter().skip(1) {
        c.at(
            extra.role.span(),
            "hosts.role",
            "only one host may be the load-balancer",
        );
    }
    hosts
}

/// RFC 1123 label, lowercase: it becomes a node name (Kubernetes requires lowercase) and a SAN.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_label_message(s: &str) -> String {
    format!(
        "{s:?} is not a valid DNS label: use 1-63 lowercase letters, digits and '-', not starting or ending with '-'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
