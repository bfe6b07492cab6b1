//! Per-host bundles (`hardway::formats::bundle`): byte-for-byte determinism, and what the real tools make of them —
//! GNU tar (listing, extraction as root, and a byte-for-byte rebuild of the tar stream), gzip, Python's
//! tarfile and hashlib, sha256sum — plus segments spliced into several bundles, manifests, overlay
//! listings, and the errors bad overlays get.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hardway::formats::bundle::{
    BundleDigest, BundleError, Entry, EntryKind, Manifest, Overlay, RecordKind, Segment,
    write_bundle, write_bundle_with_segments,
};

use crate::util::*;

/// A member name of exactly 100 bytes (fits the header's name field) and one of 101 (needs a LongLink).
fn name_100() -> String {
    format!("/var/lib/{}", "n".repeat(100 - "var/lib/".len()))
}

fn long_dir() -> String {
    format!("/var/lib/kubelet/{}", "d".repeat(110))
}

/// Semi-compressible bytes, like a binary: a deterministic mix of a few repeated words and noise.
fn pseudo_binary(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let words: [&[u8]; 4] = [
        b"\x7fELF\x02\x01\x01",
        b"runtime.",
        b"\0\0\0\0\0\0\0\0",
        b"kube-",
    ];
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            out.push((x >> 24) as u8);
        } else {
            out.extend_from_slice(words[(x >> 40) as usize % words.len()]);
        }
    }
    out.truncate(len);
    out
}

/// The test overlay's files: (target path, mode, contents).
fn files() -> Vec<(String, u32, Vec<u8>)> {
    vec![
        (
            "/var/lib/kubernetes/ca-key.pem".into(),
            0o600,
            b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".to_vec(),
        ),
        (
            "/var/lib/kubernetes/ca.pem".into(),
            0o644,
            b"-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "/etc/kubernetes/config/kube-scheduler.yaml".into(),
            0o644,
            b"apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                .to_vec(),
        ),
        (
            "/usr/local/bin/kubelet".into(),
            0o755,
            pseudo_binary(1, 70_000),
        ),
        ("/var/lib/empty".into(), 0o644, Vec::new()),
        (
            name_100(),
            0o644,
            b"exactly 100 bytes of member name\n".to_vec(),
        ),
        (
            format!("{}/kubeconfig", long_dir()),
            0o600,
            b"kind: Config\n".to_vec(),
        ),
    ]
}

/// Directories with explicit modes; the other parents get 0755.
fn dirs() -> Vec<(String, u32)> {
    vec![
        ("/var/lib/kubernetes".into(), 0o700),
        ("/var/lib/etcd".into(), 0o700),
        (long_dir(), 0o750),
    ]
}

/// Writes the sources of `files` under `dir` (flat names, in the given order, with odd modes of their own,
/// which must not matter) and builds the overlay, adding entries in that order.
fn overlay_from(
    host: &str,
    dir: &Path,
    files: &[(String, u32, Vec<u8>)],
    dirs: &[(String, u32)],
    dirs_first: bool,
) -> Overlay {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut o = Overlay::new(host).expect("host");
    let add_dirs = |o: &mut Overlay| {
        for (path, mode) in dirs {
            o.add_dir(path, *mode, 0o755).expect("add_dir");
        }
    };
    if dirs_first {
        add_dirs(&mut o);
    }
    for (i, (path, mode, bytes)) in files.iter().enumerate() {
        let src = dir.join(format!("src-{i}"));
        std::fs::write(&src, bytes).expect("write source");
        let odd = if dirs_first { 0o640 } else { 0o777 };
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(odd)).expect("chmod");
        o.add_file(path, *mode, &src, 0o755).expect("add_file");
    }
    if !dirs_first {
        add_dirs(&mut o);
    }
    o
}

fn fixture(t: &TestDir) -> Overlay {
    overlay_from("node-0", &t.join("a"), &files(), &dirs(), true)
}

fn bundle(o: &Overlay) -> (Vec<u8>, Manifest) {
    let mut out = Vec::new();
    let m = write_bundle(o, &mut out).expect("write_bundle");
    (out, m)
}

fn tool(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn member_name(path: &str, entry: &Entry) -> String {
    match entry.kind {
        EntryKind::Dir => format!("{}/", &path[1..]),
        EntryKind::File { .. } => path[1..].to_owned(),
    }
}

fn ls_mode(entry: &Entry) -> String {
    let mut s = String::from(match entry.kind {
        EntryKind::Dir => 'd',
        EntryKind::File { .. } => '-',
    });
    for shift in [6, 3, 0] {
        let bits = entry.mode >> shift;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn is_root(t: &TestDir) -> bool {
    let probe = t.write("uid-probe", "");
    std::fs::metadata(probe).expect("probe").uid() == 0
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn bundle_bytes_depend_only_on_the_overlay() {
    let t = TestDir::new();
    let a = fixture(&t);
    let (first, manifest) = bundle(&a);
    let (second, again) = bundle(&a);
    assert_eq!(first, second, "two runs differ");
    assert_eq!(manifest, again);

    // Other temporary paths, the reverse order of calls, directories set after their files, other
    // source modes and mtimes: the same bytes.
    let mut reversed = files();
    reversed.reverse();
    let b = overlay_from("node-0", &t.join("elsewhere/b"), &reversed, &dirs(), false);
    assert_eq!(a.entries.len(), b.entries.len());
    let (other, other_manifest) = bundle(&b);
    assert_eq!(first, other, "input order or temp paths changed the bundle");
    assert_eq!(manifest, other_manifest);

    // Fixed gzip header: magic, deflate, no flags, mtime 0, XFL 0, OS 3 (Unix).
    assert_eq!(&first[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    // Another host name alone changes the manifest, not the archive.
    let c = overlay_from("node-1", &t.join("c"), &files(), &dirs(), true);
    let (third, m3) = bundle(&c);
    assert_eq!(first, third);
    assert_eq!(m3.host, "node-1");
}

#[test]
fn gnu_tar_lists_sorted_entries_with_modes_owner_and_mtime() {
    if !have_tool("tar") {
        return;
    }
    let t = TestDir::new();
    let o = fixture(&t);
    let path = t.join("node-0.tar.gz");
    std::fs::write(&path, bundle(&o).0).expect("write bundle");
    let expected: Vec<String> = o
        .entries
        .iter()
        .map(|(p, e)| {
            let size = match &e.kind {
                EntryKind::Dir => 0,
                EntryKind::File { source, .. } => std::fs::metadata(source).expect("source").len(),
            };
            format!(
                "{} OWNER {size} 1970-01-01 00:00 {}",
                ls_mode(e),
                member_name(p, e)
            )
        })
        .collect();
    assert!(expected.iter().any(|l| l.starts_with("drwx------ ")));
    assert!(expected.iter().any(|l| l.starts_with("-rw------- ")));
    assert!(expected.iter().any(|l| l.starts_with("-rwxr-xr-x ")));
    assert!(expected.iter().any(|l| l.len() > 150), "no long name");
    for (flags, owner) in [
        (vec!["-tzvf"], "root/root"),
        (vec!["--numeric-owner", "-tzvf"], "0/0"),
    ] {
        let mut args = flags.clone();
        args.push(path_str(&path));
        let out = tool("tar", &args);
        let listed: Vec<String> = String::from_utf8(out.stdout)
            .expect("UTF-8 listing")
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let want: Vec<String> = expected.iter().map(|l| l.replace("OWNER", owner)).collect();
        assert_eq!(listed, want, "tar {flags:?}");
    }
    let names: Vec<String> = o.entries.iter().map(|(p, e)| member_name(p, e)).collect();
    assert_eq!(
        &names[..4],
        [
            "etc/",
            "etc/kubernetes/",
            "etc/kubernetes/config/",
            "etc/kubernetes/config/kube-scheduler.yaml"
        ]
    );
}

#[test]
fn gnu_tar_extracts_exact_modes_owners_and_contents() {
    if !have_tool("tar") || !have_tool("gzip") {
        return;
    }
    let t = TestDir::new();
    let o = fixture(&t);
    let path = t.join("node-0.tar.gz");
    std::fs::write(&path, bundle(&o).0).expect("write bundle");
    tool("gzip", &["-t", path_str(&path)]);
    let root = t.join("root");
    std::fs::create_dir(&root).expect("mkdir");
    tool(
        "tar",
        &[
            "-xzpf",
            path_str(&path),
            "-C",
            path_str(&root),
            "--same-owner",
            "--numeric-owner",
        ],
    );
    let mut want = BTreeMap::new();
    for (p, e) in &o.entries {
        match &e.kind {
            EntryKind::Dir => want.insert(format!("{}/", &p[1..]), (e.mode, Vec::new())),
            EntryKind::File { source, .. } => want.insert(
                p[1..].to_owned(),
                (e.mode, std::fs::read(source).expect("source")),
            ),
        };
    }
    let got = snapshot(&root);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, (mode, bytes)) in &want {
        assert_eq!(got[k].0, *mode, "mode of {k}");
        assert_eq!(&got[k].1, bytes, "contents of {k}");
    }
    if is_root(&t) {
        for k in want.keys() {
            let meta = std::fs::symlink_metadata(root.join(k)).expect("meta");
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner of {k}");
        }
    } else {
        unavailable(
            "root (the ownership checks extract with --same-owner)",
            "run the tests as root, as CI does",
        );
    }
}

#[test]
fn tar_stream_is_byte_identical_to_gnu_tar_format_gnu() {
    if !have_tool("tar") || !have_tool("gzip") {
        return;
    }
    let t = TestDir::new();
    let o = fixture(&t);
    let path = t.join("node-0.tar.gz");
    std::fs::write(&path, bundle(&o).0).expect("write bundle");
    let root = t.join("root");
    std::fs::create_dir(&root).expect("mkdir");
    tool("tar", &["-xzpf", path_str(&path), "-C", path_str(&root)]);
    let ours = tool("gzip", &["-dc", path_str(&path)]).stdout;
    // GNU tar, archiving the extracted tree member by member in our order, with root ownership, mtime 0
    // and one 512-byte block per record (so no padding to 10 KiB).
    let names: Vec<String> = o.entries.iter().map(|(p, e)| member_name(p, e)).collect();
    let mut args = vec![
        "-C",
        path_str(&root),
        "--format=gnu",
        "-b",
        "1",
        "--owner=root:0",
        "--group=root:0",
        "--mtime=@0",
        "--no-recursion",
        "-cf",
        "-",
    ];
    args.extend(names.iter().map(String::as_str));
    let gnu = tool("tar", &args).stdout;
    assert_eq!(ours.len(), gnu.len(), "tar stream lengths differ");
    if let Some(i) = ours.iter().zip(&gnu).position(|(a, b)| a != b) {
        panic!(
            "tar streams differ at byte {i} (block {}, offset {}): ours {:?}, GNU tar {:?}",
            i / 512,
            i % 512,
            String::from_utf8_lossy(&ours[i / 512 * 512..i / 512 * 512 + 512]),
            String::from_utf8_lossy(&gnu[i / 512 * 512..i / 512 * 512 + 512])
        );
    }
}

#[test]
fn python_tarfile_reads_the_bundle() {
    if !have_tool("python3") {
        return;
    }
    let t = TestDir::new();
    let o = fixture(&t);
    let path = t.join("node-0.tar.gz");
    let (bytes, manifest) = bundle(&o);
    std::fs::write(&path, bytes).expect("write bundle");
    let script = r#"
import sys, tarfile, hashlib
with tarfile.open(sys.argv[1], "r:gz") as tar:
    for m in tar:
        data = tar.extractfile(m).read() if m.isfile() else b""
        kind = "d" if m.isdir() else ("f" if m.isfile() else "?")
        print(kind, "%04o" % m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime, m.size,
              hashlib.sha256(data).hexdigest(), m.name)
"#;
    let out = tool("python3", &["-c", script, path_str(&path)]);
    let got: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect();
    let want: Vec<String> = manifest
        .entries
        .iter()
        .map(|(p, r)| match r.kind {
            // Python strips a directory's trailing slash.
            RecordKind::Dir => format!(
                "d {:04o} 0 0 root root 0 0 {} {}",
                r.mode,
                sha256_hex(b""),
                &p[1..]
            ),
            RecordKind::File(d) => format!(
                "f {:04o} 0 0 root root 0 {} {} {}",
                r.mode,
                d.size,
                hex(&d.sha256),
                &p[1..]
            ),
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn manifest_round_trips_and_its_hashes_match_sha256sum_and_hashlib() {
    let t = TestDir::new();
    let o = fixture(&t);
    let (bytes, manifest) = bundle(&o);
    let text = manifest.render();
    assert_eq!(Manifest::parse(&text).expect("parse"), manifest);
    assert!(
        text.starts_with("hardway bundle manifest v1\nhost node-0\n"),
        "{text}"
    );
    assert!(text.contains("\nd 0700 /var/lib/kubernetes\n"), "{text}");
    assert_eq!(manifest.entries, o.records().expect("records"));
    assert_eq!(manifest.bundle.size, bytes.len() as u64);
    assert_eq!(
        manifest.bundle,
        BundleDigest::of(&bytes[..]).expect("digest")
    );
    // Non-canonical text is refused, naming the line.
    let upper = text.replace(
        &hex(&manifest.bundle.sha256),
        &hex(&manifest.bundle.sha256).to_uppercase(),
    );
    let err = Manifest::parse(&upper)
        .expect_err("uppercase hex")
        .to_string();
    assert!(err.contains("line 4"), "{err}");
    assert!(
        Manifest::parse(text.trim_end()).is_err(),
        "missing final newline accepted"
    );

    let path = t.join("node-0.tar.gz");
    std::fs::write(&path, &bytes).expect("write bundle");
    if have_tool("sha256sum") {
        let out = tool("sha256sum", &[path_str(&path)]);
        let sum = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            sum.split_whitespace().next(),
            Some(hex(&manifest.bundle.sha256).as_str())
        );
    }
    if have_tool("python3") {
        let script = r#"
import sys, hashlib
data = open(sys.argv[1], "rb").read()
try:
    import blake3
    b3 = blake3.blake3(data).hexdigest()
except ImportError:
    b3 = "NO-BLAKE3"
print(hashlib.sha256(data).hexdigest(), b3)
"#;
        let out = tool("python3", &["-c", script, path_str(&path)]);
        let out = String::from_utf8_lossy(&out.stdout);
        let mut it = out.split_whitespace();
        assert_eq!(it.next(), Some(hex(&manifest.bundle.sha256).as_str()));
        match it.next() {
            Some("NO-BLAKE3") => unavailable(
                "Python's blake3 module",
                "no Debian 12 package: pip install blake3, as .ci/run does",
            ),
            b3 => assert_eq!(b3, Some(hex(&manifest.bundle.blake3).as_str())),
        }
    }
    // Every file's SHA-256 in the manifest is the source's.
    for (p, e) in &o.entries {
        if let (EntryKind::File { source, .. }, RecordKind::File(d)) =
            (&e.kind, manifest.entries[p].kind)
        {
            let bytes = std::fs::read(source).expect("source");
            assert_eq!(hex(&d.sha256), sha256_hex(&bytes), "{p}");
            assert_eq!(d.size, bytes.len() as u64, "{p}");
        }
    }
}

#[test]
fn overlay_listing_round_trips_and_catches_changed_files() {
    let t = TestDir::new();
    let root = t.join("overlay-output/root");
    let mut o = Overlay::new("node-0").expect("host");
    for (path, mode) in dirs() {
        o.add_dir(&path, mode, 0o755).expect("dir");
    }
    for (path, mode, bytes) in files() {
        let src = root.join(&path[1..]);
        std::fs::create_dir_all(src.parent().expect("parent")).expect("mkdir");
        std::fs::write(&src, bytes).expect("write");
        o.add_file(&path, mode, src, 0o755).expect("file");
    }
    let text = o.render().expect("render");
    assert!(
        text.starts_with("hardway overlay v1\nhost node-0\nd 0755 /etc\n"),
        "{text}"
    );
    let ca_key = &files()[0].2;
    let key = format!(
        "f 0600 {} {} /var/lib/kubernetes/ca-key.pem\n",
        sha256_hex(ca_key),
        ca_key.len()
    );
    assert!(text.contains(&key), "{text}");
    let parsed = Overlay::parse(&text, &root).expect("parse");
    assert_eq!(parsed.render().expect("render again"), text);
    let mut filled = o.clone();
    filled.fill_digests().expect("digests");
    assert_eq!(parsed, filled);
    assert_eq!(bundle(&parsed).0, bundle(&o).0);

    // Same size, other bytes: the recorded digest no longer matches.
    let ca = root.join("var/lib/kubernetes/ca.pem");
    let mut bytes = std::fs::read(&ca).expect("read");
    bytes[0] ^= 1;
    std::fs::write(&ca, bytes).expect("write");
    let err = write_bundle(&parsed, &mut Vec::new()).expect_err("changed file");
    assert!(matches!(err, BundleError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("\"/var/lib/kubernetes/ca.pem\""),
        "{err}"
    );
}

/// Two hosts sharing large files (the etcd binaries) and having their own entries before and after them.
fn shared_overlays(t: &TestDir) -> (Overlay, Overlay, BTreeMap<String, Entry>) {
    let shared = t.join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    let mut etcd = BTreeMap::new();
    for (name, seed, len) in [("etcd", 7, 300_000), ("etcdctl", 8, 200_000)] {
        let src = shared.join(name);
        std::fs::write(&src, pseudo_binary(seed, len)).expect("write");
        etcd.insert(
            format!("/usr/local/bin/{name}"),
            Entry {
                mode: 0o755,
                kind: EntryKind::File {
                    source: src,
                    digest: None,
                },
            },
        );
    }
    let with_etcd = |host: &str, dir: &str, files: &[(String, u32, Vec<u8>)]| {
        let mut o = overlay_from(host, &t.join(dir), files, &dirs(), true);
        for (p, e) in &etcd {
            let EntryKind::File { source, .. } = &e.kind else {
                unreachable!()
            };
            o.add_file(p, e.mode, source.clone(), 0o755).expect("etcd");
        }
        o
    };
    let a = with_etcd("server-0", "a", &files());
    let mut other = files();
    other[0].2 = b"another host's key\n".to_vec();
    other.push(("/etc/hostname".into(), 0o644, b"server-1\n".to_vec()));
    let b = with_etcd("server-1", "b", &other);
    (a, b, etcd)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn spliced_segment_gives_the_same_tar_stream_and_tree() {
    if !have_tool("gzip") || !have_tool("tar") {
        return;
    }
    let t = TestDir::new();
    let (a, b, etcd) = shared_overlays(&t);
    let segment = Segment::compress(&etcd).expect("segment");
    // The run is in the middle: directories before it, /usr/local/bin/kubelet and /var after it.
    assert!(a.entries.keys().next_back() > segment.records().keys().next_back());

    for o in [&a, &b] {
        let (plain, plain_manifest) = bundle(o);
        let mut spliced = Vec::new();
        let manifest = write_bundle_with_segments(o, &[&segment], &mut spliced).expect("splice");
        let mut again = Vec::new();
        write_bundle_with_segments(o, &[&segment], &mut again).expect("splice again");
        assert_eq!(spliced, again, "splicing is not deterministic");
        assert_ne!(spliced, plain);
        assert_eq!(manifest.entries, plain_manifest.entries);
        assert!(
            find(&spliced, segment.member()).is_some(),
            "segment bytes not in {}",
            o.host
        );

        let dir = t.join(&o.host);
        std::fs::create_dir(&dir).expect("mkdir");
        let (p1, p2) = (dir.join("plain.tar.gz"), dir.join("spliced.tar.gz"));
        std::fs::write(&p1, &plain).expect("write");
        std::fs::write(&p2, &spliced).expect("write");
        tool("gzip", &["-t", path_str(&p2)]);
        let tar1 = tool("gzip", &["-dc", path_str(&p1)]).stdout;
        let tar2 = tool("gzip", &["-dc", path_str(&p2)]).stdout;
        assert!(tar1 == tar2, "tar streams differ for {}", o.host);
        let (x1, x2) = (dir.join("x1"), dir.join("x2"));
        for (archive, x) in [(&p1, &x1), (&p2, &x2)] {
            std::fs::create_dir(x).expect("mkdir");
            tool("tar", &["-xzpf", path_str(archive), "-C", path_str(x)]);
        }
        assert_eq!(snapshot(&x1), snapshot(&x2));
        if have_tool("python3") {
            // Python's tarfile reads the concatenated members as one stream too.
            let script = r#"
import sys, tarfile, hashlib
with tarfile.open(sys.argv[1], "r:gz") as t:
    for m in t:
        data = t.extractfile(m).read() if m.isfile() else b""
        print(m.name, oct(m.mode), hashlib.sha256(data).hexdigest())
"#;
            let read = |p: &Path| tool("python3", &["-c", script, path_str(p)]).stdout;
            let (r1, r2) = (read(&p1), read(&p2));
            assert_eq!(r1, r2, "tarfile reads {} differently", o.host);
            assert_eq!(r1.iter().filter(|&&b| b == b'\n').count(), o.entries.len());
        }
        assert!(snapshot(&x2).contains_key("usr/local/bin/etcdctl"));
    }

    // The segment survives being stored as its member and index.
    let back =
        Segment::from_parts(&segment.index(), segment.member().to_vec()).expect("from_parts");
    assert_eq!(back, segment);
    let mut corrupt = segment.member().to_vec();
    corrupt[20] ^= 1;
    assert!(Segment::from_parts(&segment.index(), corrupt).is_err());
    let index = segment.index().replace("tar-size ", "tar-size 1");
    assert!(Segment::from_parts(&index, segment.member().to_vec()).is_err());
}

#[test]
fn segments_that_do_not_match_the_overlay_are_refused() {
    let t = TestDir::new();
    let (a, _, etcd) = shared_overlays(&t);
    let segment = Segment::compress(&etcd).expect("segment");
    let splice = |o: &Overlay, segments: &[&Segment]| {
        write_bundle_with_segments(o, segments, &mut Vec::new())
            .expect_err("splice should fail")
            .to_string()
    };

    let mut other_mode = a.clone();
    other_mode
        .entries
        .get_mut("/usr/local/bin/etcd")
        .expect("etcd")
        .mode = 0o700;
    let err = splice(&other_mode, &[&segment]);
    assert!(
        err.contains("\"/usr/local/bin/etcd\"") && err.contains("modes"),
        "{err}"
    );

    let mut other_bytes = a.clone();
    let src = t.join("other-etcdctl");
    std::fs::write(&src, pseudo_binary(99, 200_000)).expect("write");
    other_bytes
        .entries
        .get_mut("/usr/local/bin/etcdctl")
        .expect("etcdctl")
        .kind = EntryKind::File {
        source: src,
        digest: None,
    };
    let err = splice(&other_bytes, &[&segment]);
    assert!(
        err.contains("\"/usr/local/bin/etcdctl\"") && err.contains("contents"),
        "{err}"
    );

    let mut missing = a.clone();
    missing.entries.remove("/usr/local/bin/etcdctl");
    let err = splice(&missing, &[&segment]);
    assert!(
        err.contains("\"/usr/local/bin/etcdctl\"") && err.contains("not in the overlay"),
        "{err}"
    );

    // `etcd-backup` sorts between `etcd` and `etcdctl`: the segment's run would not be contiguous.
    let mut between = a.clone();
    between
        .add_file(
            "/usr/local/bin/etcd-backup",
            0o755,
            t.join("other-etcdctl"),
            0o755,
        )
        .expect("add");
    let err = splice(&between, &[&segment]);
    assert!(
        err.contains("\"/usr/local/bin/etcd-backup\"") && err.contains("contiguous"),
        "{err}"
    );

    let err = splice(&a, &[&segment, &segment]);
    assert!(err.contains("in two segments"), "{err}");
}

#[test]
fn bad_overlays_are_refused_naming_the_path() {
    let t = TestDir::new();
    let src = t.write("src", "x");
    let mut o = Overlay::new("node-0").expect("host");
    for (path, reason) in [
        ("etc/x", "not absolute"),
        ("/etc/../x", "`..`"),
        ("/etc/./x", "`.`"),
        ("/etc//x", "empty component"),
        ("/etc/x/", "empty component"),
        ("/", "root directory"),
        ("/etc/a\0b", "control character"),
        ("/etc/a\nb", "control character"),
    ] {
        let err = o
            .add_file(path, 0o644, &src, 0o755)
            .expect_err(path)
            .to_string();
        assert!(
            err.contains(&format!("{path:?}")) && err.contains(reason),
            "{path:?}: {err}"
        );
    }
    assert!(o.entries.is_empty(), "a refused entry was added");

    let err = o
        .add_file("/etc/x", 0o100644, &src, 0o755)
        .expect_err("mode")
        .to_string();
    assert!(
        err.contains("\"/etc/x\"") && err.contains("0o100644"),
        "{err}"
    );
    assert!(Overlay::new("node 0").is_err());
    assert!(Overlay::new("").is_err());

    // Collisions between files and directories, and duplicates.
    o.add_file("/etc/x", 0o644, &src, 0o755).expect("file");
    let err = o
        .add_dir("/etc/x", 0o755, 0o755)
        .expect_err("dir over file")
        .to_string();
    assert!(
        err.contains("\"/etc/x\"") && err.contains("a directory cannot replace a file"),
        "{err}"
    );
    let err = o
        .add_file("/etc/x/y", 0o644, &src, 0o755)
        .expect_err("under a file")
        .to_string();
    assert!(
        err.contains("\"/etc/x/y\"") && err.contains("\"/etc/x\""),
        "{err}"
    );
    let err = o
        .add_file("/etc", 0o644, &src, 0o755)
        .expect_err("file over dir")
        .to_string();
    assert!(
        err.contains("\"/etc\"") && err.contains("a file cannot replace a directory"),
        "{err}"
    );
    let err = o
        .add_file("/etc/x", 0o600, &src, 0o755)
        .expect_err("duplicate")
        .to_string();
    assert!(
        err.contains("\"/etc/x\"") && err.contains("already"),
        "{err}"
    );
    assert_eq!(o.entries.len(), 2);
    write_bundle(&o, &mut Vec::new()).expect("the overlay is still good");

    // Overlays built by hand are checked when bundled.
    let file = |p: &Path| Entry {
        mode: 0o644,
        kind: EntryKind::File {
            source: p.to_path_buf(),
            digest: None,
        },
    };
    let dir = Entry {
        mode: 0o755,
        kind: EntryKind::Dir,
    };
    let raw = |entries: Vec<(&str, Entry)>| Overlay {
        host: "node-0".into(),
        entries: entries
            .into_iter()
            .map(|(p, e)| (p.to_owned(), e))
            .collect(),
    };
    let cases = [
        (
            raw(vec![
                ("/etc/kubernetes/x", file(&src)),
                ("/etc", dir.clone()),
            ]),
            "\"/etc/kubernetes\"",
        ),
        (
            raw(vec![("/etc", file(&src)), ("/etc/x", file(&src))]),
            "its parent is a file",
        ),
        (raw(vec![("relative", file(&src))]), "not absolute"),
        (
            raw(vec![("/etc/..", dir.clone()), ("/etc", dir.clone())]),
            "\"/etc/..\"",
        ),
    ];
    for (overlay, needle) in cases {
        let err = write_bundle(&overlay, &mut Vec::new())
            .expect_err(needle)
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let missing = raw(vec![
        ("/etc", dir.clone()),
        ("/etc/x", file(&PathBuf::from("/nonexistent/src"))),
    ]);
    let err = write_bundle(&missing, &mut Vec::new())
        .expect_err("missing source")
        .to_string();
    assert!(
        err.contains("\"/etc/x\"") && err.contains("/nonexistent/src"),
        "{err}"
    );
}

/// Pins the bytes of a small bundle, with and without a segment. Produced by this implementation (flate2
/// =1.1.11, miniz_oxide =0.9.1, level 6); the tar stream inside is checked against GNU tar by
/// `tar_stream_is_byte_identical_to_gnu_tar_format_gnu`. A change here changes every host's bundle.
#[test]
fn bundle_bytes_are_pinned() {
    let t = TestDir::new();
    let mut o = Overlay::new("node-0").expect("host");
    let hostname = t.write("hostname", "node-0\n");
    let key = t.join("key");
    std::fs::write(&key, pseudo_binary(3, 5000)).expect("write");
    let etcd = t.join("etcd");
    std::fs::write(&etcd, pseudo_binary(4, 20_000)).expect("write");
    o.add_file("/etc/hostname", 0o644, &hostname, 0o755)
        .expect("add");
    o.add_dir("/var/lib/kubernetes", 0o700, 0o755).expect("add");
    o.add_file("/var/lib/kubernetes/ca-key.pem", 0o600, &key, 0o755)
        .expect("add");
    o.add_file("/usr/local/bin/etcd", 0o755, &etcd, 0o755)
        .expect("add");
    let manifest = bundle(&o).1;
    let shared: BTreeMap<String, Entry> = o
        .entries
        .range("/usr/local/bin/etcd".to_owned()..="/usr/local/bin/etcd".to_owned())
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect();
    let segment = Segment::compress(&shared).expect("segment");
    let mut spliced = Vec::new();
    write_bundle_with_segments(&o, &[&segment], &mut spliced).expect("splice");
    assert_eq!(
        [
            hex(&manifest.bundle.sha256),
            sha256_hex(segment.member()),
            sha256_hex(&spliced)
        ],
        [
            "086fd6fecb6e37731c15880a634f8edc0dd014847e7d919dc67ef87827be69cf",
            "caeb09db31e28d6626cda964d25c31f665fa1b337be98007230ee2b9d5d9a894",
            "e1843c31244c92970239458fd33082e3f63bb62ce3603c691d0a0b79d9addb3b",
        ]
    );
}
