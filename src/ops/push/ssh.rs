//! The transport: the system's OpenSSH client, so `~/.ssh/config` (or `--ssh-config`), `ProxyJump`, agents and
//! `known_hosts` work as they do for the operator. One session per host runs the target program.
//!
//! Host keys are never accepted silently: `StrictHostKeyChecking=yes`, `UpdateHostKeys=no` and `BatchMode=yes`
//! are given on the command line, which takes precedence over any configuration file. When the key is unknown,
//! `ssh-keyscan` is run only to *print* the key's fingerprint in the error, with the command that trusts it.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::recipe::SshTarget;

/// The target program, sent as the argument of `sh -c` (see `target.sh`).
pub const TARGET_PROGRAM: &str = include_str!("target.sh");

/// `'…'` for a POSIX shell: the remote command is read by the login shell of the target's user.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command the target's login shell runs: the program under `/bin/sh`, or `sudo -n /bin/sh` (no password
/// prompt: sudo must allow it without one, see the README).
pub fn remote_command(sudo: bool) -> String {
    let runner = if sudo { "sudo -n /bin/sh" } else { "/bin/sh" };
    format!("{runner} -c {} hardway-push", shell_quote(TARGET_PROGRAM))
}

/// The `ssh` argv (program first) that runs the target program on `target`.
pub fn argv(target: &SshTarget, ssh_config: Option<&Path>, sudo: bool) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["ssh".into()];
    if let Some(f) = ssh_config {
        a.push("-F".into());
        a.push(f.as_os_str().to_owned());
    }
    for o in [
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        "UpdateHostKeys=no",
        "ConnectTimeout=20",
        "ServerAliveInterval=15",
        "ServerAliveCountMax=4",
    ] {
        a.push("-o".into());
        a.push(o.into());
    }
    a.push("-T".into());
    a.push("-p".into());
    a.push(target.port.to_string().into());
    a.push("-l".into());
    a.push(target.user.clone().into());
    a.push("--".into());
    a.push(target.address.clone().into());
    a.push(remote_command(sudo).into());
    a
}

/// What ssh's stderr says about the host key, if it refused one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyProblem {
    /// No key of this type (`ED25519`, `ECDSA`, `RSA`, or empty when ssh did not say) is known for the host.
    Unknown { key_type: String },
    /// The host offers another key than known_hosts holds; the fingerprint ssh printed, if any.
    Changed { fingerprint: Option<String> },
}

/// Reads ssh's stderr after it failed.
pub fn host_key_problem(stderr: &str) -> Option<HostKeyProblem> {
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        let fingerprint = stderr
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .map(|w| w.trim_end_matches('.').to_string());
        return Some(HostKeyProblem::Changed { fingerprint });
    }
    if !stderr.contains("Host key verification failed") {
        return None;
    }
    let key_type = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("No ")?
                .split_once(" host key is known for")
                .map(|(t, _)| t.to_string())
        })
        .unwrap_or_default();
    Some(HostKeyProblem::Unknown { key_type })
}

/// The fingerprints `target` offers (`256 SHA256:… (ED25519)`), read with `ssh-keyscan` and `ssh-keygen -l`
/// for printing only; nothing is written anywhere. `Err`: why they could not be read.
pub fn scan_fingerprints(target: &SshTarget, key_type: &str) -> Result<Vec<String>, String> {
    let mut scan = Command::new("ssh-keyscan");
    scan.args(["-T", "5", "-p", &target.port.to_string()]);
    if !key_type.is_empty() {
        scan.args(["-t", &key_type.to_ascii_lowercase()]);
    }
    let keys = scan
        .arg("--")
        .arg(&target.address)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-keyscan: {e}"))?;
    if keys.stdout.is_empty() {
        return Err(format!(
            "ssh-keyscan read no key from {}:{}",
            target.address, target.port
        ));
    }
    let mut keygen = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    if let Some(mut stdin) = keygen.stdin.take() {
        std::io::Write::write_all(&mut stdin, &keys.stdout)
            .map_err(|e| format!("ssh-keygen -l: {e}"))?;
    }
    let out = keygen
        .wait_with_output()
        .map_err(|e| format!("ssh-keygen -l: {e}"))?;
    let prints: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // `256 SHA256:… 10.0.0.5 (ED25519)`: keep the size, the hash and the type.
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [bits, hash, .., kind] if hash.starts_with("SHA256:") => {
                    Some(format!("{bits} {hash} {kind}"))
                }
                _ => None,
            }
        })
        .collect();
    if prints.is_empty() {
        Err("ssh-keygen -l printed no fingerprint".to_string())
    } else {
        Ok(prints)
    }
}

/// The command that adds the host's key to known_hosts, to run once the fingerprint is checked.
pub fn trust_command(target: &SshTarget, key_type: &str) -> String {
    let t = if key_type.is_empty() {
        String::new()
    } else {
        format!(" -t {}", key_type.to_ascii_lowercase())
    };
    format!(
        "ssh-keyscan -p {}{t} {} >> ~/.ssh/known_hosts",
        target.port, target.address
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            user: "deploy".into(),
            address: "10.0.0.5".into(),
            port: 2222,
        }
    }

    #[test]
    fn argv_is_strict_and_ends_with_the_program() {
        let a = argv(&target(), Some(Path::new("/x/cfg")), true);
        let s: Vec<String> = a.iter().map(|o| o.to_string_lossy().into_owned()).collect();
        assert_eq!(&s[..3], ["ssh", "-F", "/x/cfg"]);
        assert!(
            s.windows(2)
                .any(|w| w == ["-o", "StrictHostKeyChecking=yes"])
        );
        assert!(s.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
        let at = s.iter().position(|x| x == "--").expect("--");
        assert_eq!(&s[at - 4..at], ["-p", "2222", "-l", "deploy"]);
        assert_eq!(s[at + 1], "10.0.0.5");
        assert!(s[at + 2].starts_with("sudo -n /bin/sh -c '"));
        assert!(s[at + 2].ends_with("' hardway-push"));
        // The remote command is one word for any POSIX shell: unquoting it gives the program back.
        let quoted = shell_quote("a'b\nc");
        assert_eq!(quoted, "'a'\\''b\nc'");
    }

    #[test]
    fn program_fits_one_argument() {
        // Linux limits one argument to 128 KiB (MAX_ARG_STRLEN).
        assert!(remote_command(false).len() < 64 * 1024);
    }

    #[test]
    fn reads_host_key_failures() {
        assert_eq!(
            host_key_problem(
                "No ED25519 host key is known for 10.0.0.5 and you have requested strict checking.\r\n\
                 Host key verification failed.\r\n"
            ),
            Some(HostKeyProblem::Unknown {
                key_type: "ED25519".into()
            })
        );
        let changed = "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\n\
                       The fingerprint for the ED25519 key sent by the remote host is\n\
                       SHA256:abc.\nHost key verification failed.\n";
        assert_eq!(
            host_key_problem(changed),
            Some(HostKeyProblem::Changed {
                fingerprint: Some("SHA256:abc".into())
            })
        );
        assert_eq!(
            host_key_problem("ssh: connect to host 10.0.0.5 port 22: No route to host"),
            None
        );
        assert_eq!(
            trust_command(&target(), "ED25519"),
            "ssh-keyscan -p 2222 -t ed25519 10.0.0.5 >> ~/.ssh/known_hosts"
        );
    }
}
