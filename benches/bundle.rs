//! Bundle throughput benchmark (plain `main`, `harness = false`).
//!
//! `cargo bench --bench bundle` builds a 40 MB overlay of real executables (`/usr/bin/etcd` and `etcdctl`
//! when installed, then other `/usr/bin` files in name order, the last one cut to fit) in a temporary
//! directory and prints, for the same input in the same run:
//! - `write_bundle` throughput (MB/s of input) and the compressed size;
//! - `gzip -6 -n -c` on the bundle's uncompressed tar stream, for comparison, and the ratio of the two
//!   (the two alternate, best of N runs each, so that both see the same load);
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

use hardway::formats::bundle::{
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

/// The best wall-clock and CPU times of several runs.
struct Times {
    wall: Duration,
    cpu: Duration,
}

impl Default for Times {
    fn default() -> Times {
        Times {
            wall: Duration::MAX,
            cpu: Duration::MAX,
        }
    }
}

impl Times {
    fn add(&mut self, wall: Duration, cpu: Duration) {
        self.wall = self.wall.min(wall);
        self.cpu = self.cpu.min(cpu);
    }

    fn print(&self, what: &str, mb: f64, out_bytes: f64) {
        println!(
            "{what:<17} {:>8.1} MB/s ({:.3} s)  {:>8.1} MB/s of CPU ({:.3} s)  -> {:.1} MB ({:.1}%)",
            mb / self.wall.as_secs_f64(),
            self.wall.as_secs_f64(),
            mb / self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64(),
            out_bytes / MB,
            100.0 * out_bytes / (mb * MB)
        );
    }
}

/// The length of a clock tick, the unit of `/proc/*/stat` times.
fn clock_tick() -> Duration {
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_nanos(1_000_000_000 / hz)
}

/// Fields of a `/proc/<pid>/stat` line from field 3 (`state`) on, after the command name.
fn stat_fields(stat: &str) -> Vec<u64> {
    let rest = &stat[stat.rfind(')').expect("stat line") + 1..];
    rest.split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect()
}

/// This process's user + system time in ticks (fields 14 and 15).
fn self_cpu_ticks() -> u64 {
    let f = stat_fields(&std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat"));
    f[11] + f[12]
}

/// The waited-for children's user + system time in ticks (fields 16 and 17).
fn children_cpu_ticks(stat: &str) -> u64 {
    let f = stat_fields(stat);
    f[13] + f[14]
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

    let tar_path = tmp.path().join("bundle.tar");
    let mut tar = std::fs::File::create(&tar_path).expect("create tar");
    write_tar(&overlay, &mut tar).expect("tar");
    drop(tar);
    // Alternate the two so that both see the same load; keep the best run of each, by wall-clock time and
    // by CPU time (user + system; the latter is what matters when other work shares the cores).
    let tick = clock_tick();
    let gz_path = tmp.path().join("bundle.tar.gz");
    let (mut ours, mut gzip) = (Times::default(), Times::default());
    let mut bundle = Vec::new();
    for _ in 0..runs {
        let cpu = self_cpu_ticks();
        let start = Instant::now();
        let mut out = Vec::with_capacity(total as usize / 2);
        write_bundle(&overlay, &mut out).expect("bundle");
        ours.add(start.elapsed(), tick * (self_cpu_ticks() - cpu) as u32);
        bundle = out;

        let start = Instant::now();
        let out = Command::new("sh")
            .args([
                "-c",
                r#"gzip -6 -n -c "$1" > "$2" || exit 1; read -r stat < /proc/$$/stat; echo "$stat""#,
                "sh",
            ])
            .arg(&tar_path)
            .arg(&gz_path)
            .stderr(Stdio::inherit())
            .output()
            .expect("run sh");
        let took = start.elapsed();
        assert!(out.status.success(), "gzip failed (is it installed?)");
        let stat = String::from_utf8(out.stdout).expect("stat");
        gzip.add(took, tick * children_cpu_ticks(&stat) as u32);
    }
    let gz_len = std::fs::metadata(&gz_path).expect("gzip output").len();
    ours.print("write_bundle", mb, bundle.len() as f64);
    println!(
        "                  blake3 {}",
        &blake3::hash(&bundle).to_hex()[..16]
    );
    gzip.print("gzip -6 -n -c", mb, gz_len as f64);
    println!(
        "ratio (ours / gzip -6): {:.2} by wall-clock time, {:.2} by CPU time",
        gzip.wall.as_secs_f64() / ours.wall.as_secs_f64(),
        gzip.cpu.as_secs_f64() / ours.cpu.as_secs_f64()
    );

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
