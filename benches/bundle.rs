//! Bundle throughput benchmark (plain `main`, `harness = false`).
//!
//! `cargo bench --bench bundle` builds a 40 MB overlay of real executables (`/usr/bin/etcd` and `etcdctl`
//! when installed, then other `/usr/bin` files in name order, the last one cut to fit) in a temporary
//! directory and prints, for the same input in the same run:
//! - `write_bundle` throughput (MB/s of input, best of N runs) and the compressed size;
//! - `gzip -6 -c` on the bundle's uncompressed tar stream, for comparison, and the ratio of the two;
//! - `Segment::compress` of the whole set, then splicing that segment into a bundle (the overlay's digests
//!   known, as when it is parsed from a listing), next to a plain memcpy of the segment's bytes.
//!
//! `HARDWAY_BENCH_MB` changes the input size (default 40), `HARDWAY_BENCH_RUNS` the runs (default 3).
//! The BLAKE3 of the bundle is printed so that a speed change that also changed the bytes is noticed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hardway::bundle::{
    Entry, Overlay, Segment, write_bundle, write_bundle_with_segments, write_tar,
};

const MB: f64 = 1e6;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Copies executables into `dir` up to `total` bytes; returns (name, path) pairs.
fn input(dir: &Path, total: u64) -> Vec<(String, std::path::PathBuf)> {
    let mut candidates: Vec<std::path::PathBuf> = ["/usr/bin/etcd", "/usr/bin/etcdctl"]
        .iter()
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    let mut rest: Vec<_> = std::fs::read_dir("/usr/bin")
        .expect("read /usr/bin")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) && !candidates.contains(p)
        })
        .collect();
    rest.sort();
    candidates.extend(rest);
    let mut out = Vec::new();
    let mut left = total;
    for src in candidates {
        if left == 0 {
            break;
        }
        let Ok(bytes) = std::fs::read(&src) else {
            continue;
        };
        let take = (bytes.len() as u64).min(left) as usize;
        let name = src
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let dst = dir.join(&name);
        std::fs::write(&dst, &bytes[..take]).expect("write input");
        left -= take as u64;
        out.push((name, dst));
    }
    assert_eq!(left, 0, "not enough bytes in /usr/bin");
    out
}

fn best<T>(runs: u64, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = None;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f();
        let took = start.elapsed();
        best = Some(best.map_or(took, |b: Duration| b.min(took)));
        last = Some(v);
    }
    (
        best.expect("at least one run"),
        last.expect("at least one run"),
    )
}

fn main() {
    let total = env_num("HARDWAY_BENCH_MB", 40) * 1_000_000;
    let runs = env_num("HARDWAY_BENCH_RUNS", 3).max(1);
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = input(tmp.path(), total);
    let mut overlay = Overlay::new("bench").expect("host");
    for (name, path) in &files {
        overlay
            .add_file(&format!("/usr/local/bin/{name}"), 0o755, path, 0o755)
            .expect("add");
    }
    let mb = total as f64 / MB;
    println!(
        "input: {} files, {mb:.1} MB (first: {})",
        files.len(),
        files[0].0
    );

    let (took, bundle) = best(runs, || {
        let mut out = Vec::with_capacity(total as usize / 2);
        write_bundle(&overlay, &mut out).expect("bundle");
        out
    });
    let ours = mb / took.as_secs_f64();
    println!(
        "write_bundle      {:>8.1} MB/s  {:>7.3} s  -> {:.1} MB ({:.1}%)  blake3 {}",
        ours,
        took.as_secs_f64(),
        bundle.len() as f64 / MB,
        100.0 * bundle.len() as f64 / total as f64,
        &blake3::hash(&bundle).to_hex()[..16]
    );

    let tar_path = tmp.path().join("bundle.tar");
    let mut tar = std::fs::File::create(&tar_path).expect("create tar");
    write_tar(&overlay, &mut tar).expect("tar");
    drop(tar);
    let (took, gz_len) = best(runs, || {
        let out = Command::new("gzip")
            .args(["-6", "-n", "-c"])
            .arg(&tar_path)
            .stderr(Stdio::inherit())
            .output()
            .expect("run gzip (is it installed?)");
        assert!(out.status.success(), "gzip failed");
        out.stdout.len()
    });
    let gzip = mb / took.as_secs_f64();
    println!(
        "gzip -6 -n -c     {:>8.1} MB/s  {:>7.3} s  -> {:.1} MB ({:.1}%)",
        gzip,
        took.as_secs_f64(),
        gz_len as f64 / MB,
        100.0 * gz_len as f64 / total as f64
    );
    println!("ratio (ours / gzip -6): {:.2}", ours / gzip);

    let entries: BTreeMap<String, Entry> = overlay
        .entries
        .iter()
        .filter(|(p, _)| p.starts_with("/usr/local/bin/"))
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect();
    let (took, segment) = best(1, || Segment::compress(&entries).expect("segment"));
    println!(
        "Segment::compress {:>8.1} MB/s  {:>7.3} s  -> {:.1} MB",
        mb / took.as_secs_f64(),
        took.as_secs_f64(),
        segment.member().len() as f64 / MB
    );
    let mut known = overlay.clone();
    known.fill_digests().expect("digests");
    let (took, spliced) = best(runs, || {
        let mut out = Vec::with_capacity(segment.member().len() + 4096);
        write_bundle_with_segments(&known, &[&segment], &mut out).expect("splice");
        out
    });
    let seg_mb = segment.member().len() as f64 / MB;
    println!(
        "splice segment    {:>8.1} MB/s of input ({:.1} MB/s of segment bytes)  {:>7.4} s  -> {:.1} MB",
        mb / took.as_secs_f64(),
        seg_mb / took.as_secs_f64(),
        took.as_secs_f64(),
        spliced.len() as f64 / MB
    );
    let (took, _) = best(runs, || {
        let mut out = Vec::with_capacity(segment.member().len());
        out.write_all(segment.member()).expect("memcpy");
        std::hint::black_box(out)
    });
    println!(
        "memcpy segment    {:>8.1} MB/s of segment bytes  {:>7.4} s",
        seg_mb / took.as_secs_f64(),
        took.as_secs_f64()
    );
}
