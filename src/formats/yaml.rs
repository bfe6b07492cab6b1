//! A small deterministic YAML emitter, in the block style kubectl writes (go-yaml).
//!
//! Plain data only: strings, ordered maps, sequences. A string is written plain only when every YAML 1.1 and 1.2
//! parser reads it back as the same string; anything a resolver could take for a boolean, null, number,
//! timestamp or syntax is double-quoted.

use std::fmt::Write;

/// A YAML node. Map entries keep their order: the emitter never sorts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Yaml {
    Str(String),
    Map(Vec<(String, Yaml)>),
    Seq(Vec<Yaml>),
}

impl Yaml {
    pub fn str(s: impl Into<String>) -> Yaml {
        Yaml::Str(s.into())
    }

    /// A map from `(key, value)` pairs, in the given order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Yaml)>) -> Yaml {
        Yaml::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The document text, ending in a newline.
    pub fn to_document(&self) -> String {
        let mut out = String::new();
        match self {
            Yaml::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
            Yaml::Seq(items) if !items.is_empty() => write_seq(&mut out, items, 0),
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
        out
    }
}

/// A node that fits on its key's line: a scalar or an empty collection.
fn inline(node: &Yaml) -> String {
    match node {
        Yaml::Str(s) => scalar(s),
        Yaml::Map(_) => "{}".to_string(),
        Yaml::Seq(_) => "[]".to_string(),
    }
}

fn is_block(node: &Yaml) -> bool {
    match node {
        Yaml::Str(_) => false,
        Yaml::Map(e) => !e.is_empty(),
        Yaml::Seq(i) => !i.is_empty(),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_map(out: &mut String, entries: &[(String, Yaml)], indent: usize) {
    for (i, (k, v)) in entries.iter().enumerate() {
        // The first entry of a map inside a sequence item continues the "- " line.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&scalar(k));
        out.push(':');
        match v {
            Yaml::Map(e) if !e.is_empty() => {
                out.push('\n');
                write_map(out, e, indent + 2);
            }
            // go-yaml writes a sequence under a key at the key's own indentation.
            Yaml::Seq(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent);
            }
            other => {
                let _ = writeln!(out, " {}", inline(other));
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Yaml], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Yaml::Map(e) if is_block(item) => write_map(out, e, indent + 2),
            Yaml::Seq(s) if is_block(item) => write_seq(out, s, indent + 2),
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// The scalar as written: plain when that is unambiguous, otherwise double-quoted.
pub fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Words that YAML 1.1 resolves to booleans or null (case-insensitive forms included).
const SPECIAL_WORDS: [&str; 12] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "<<", "=",
];

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if SPECIAL_WORDS.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Indicators and characters that start syntax.
    if "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first == ' '
        || s.ends_with(' ')
        || s.ends_with(':')
    {
        return false;
    }
    if s.contains(": ") || s.contains(" #") {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || !(c.is_ascii_graphic() || c == ' '))
    {
        return false;
    }
    // Anything that could be a number, a sexagesimal number, .inf/.nan or a timestamp in YAML 1.1.
    if (first.is_ascii_digit() || first == '+' || first == '.')
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoObB_+-.:tTzZ ".contains(c))
    {
        return false;
    }
    if s.starts_with('.') {
        let lower = s.to_ascii_lowercase();
        if matches!(lower.as_str(), ".inf" | ".nan") {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_style_like_kubectl() {
        let doc = Yaml::map([
            ("apiVersion", Yaml::str("v1")),
            (
                "clusters",
                Yaml::Seq(vec![Yaml::map([
                    (
                        "cluster",
                        Yaml::map([("server", Yaml::str("https://10.0.0.1:6443"))]),
                    ),
                    ("name", Yaml::str("c")),
                ])]),
            ),
            ("preferences", Yaml::Map(vec![])),
            ("list", Yaml::Seq(vec![Yaml::str("a"), Yaml::str("yes")])),
        ]);
        assert_eq!(
            doc.to_document(),
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\n\
             preferences: {}\nlist:\n- a\n- \"yes\"\n"
        );
    }

    #[test]
    fn quotes_what_a_yaml_1_1_parser_would_misread() {
        for s in [
            "",
            "yes",
            "No",
            "ON",
            "null",
            "~",
            "123",
            "0x1f",
            "1e3",
            "12:30",
            "2001-12-14",
            ".inf",
            "-x",
            "a: b",
            "a #b",
            "*ref",
            "tab\t",
            " lead",
            "+5",
            "0o17",
            "1_000",
        ] {
            assert!(scalar(s).starts_with('"'), "{s:?} must be quoted");
        }
        for s in [
            "secrets",
            "key1",
            "system:node:node1",
            "https://1.2.3.4:6443",
            "LS0tLS1CRUdJTg==",
            "a/b+c=",
        ] {
            assert_eq!(scalar(s), s, "{s:?} may be plain");
        }
    }
}
