//! Key generation benchmark (plain `main`, `harness = false`).
//!
//! `cargo bench --bench keygen` times single-threaded det-keygen over fixed seeds
//! (seed `i` = BLAKE3 of `i` as little-endian `u64`) and prints mean, median, p90 and max
//! wall-clock time per algorithm, plus a BLAKE3 digest of all generated PKCS#8 keys so
//! that a speed change that also changed outputs is caught.
//!
//! Environment:
//! - `HARDWAY_BENCH_RSA2048_SEEDS=N`: number of RSA-2048 seeds (default 100).
//! - `HARDWAY_BENCH_REPEAT=K`: generate each key `K` times and keep the fastest (default
//!   1); useful on a shared machine, where other processes stretch single runs.
//!
//! When the thread got noticeably less CPU than wall time (a busy machine), a note says so.

use std::time::{Duration, Instant};

use hardway::keys::{Algorithm, PrivateKey};

fn seed(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time consumed by this thread so far (scheduler accounting, coarse), if exposed.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn report(alg: Algorithm, seeds: u64, repeat: u64) {
    let mut times = Vec::with_capacity(seeds as usize);
    let mut digest = blake3::Hasher::new();
    let cpu_start = thread_cpu_time();
    let wall_start = Instant::now();
    for i in 0..seeds {
        let s = seed(i);
        let mut best = Duration::MAX;
        let mut der = Vec::new();
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            let key = PrivateKey::generate(alg, &s).expect("keygen");
            best = best.min(start.elapsed());
            der = key.to_pkcs8_der();
        }
        times.push(best);
        digest.update(&der);
    }
    let wall = wall_start.elapsed();
    times.sort();
    let total: Duration = times.iter().sum();
    let mean = total / seeds as u32;
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<11} n={:<4} mean {:>8.2} ms  median {:>8.2} ms  p90 {:>8.2} ms  max {:>8.2} ms  keys {}",
        alg.name(),
        seeds,
        ms(mean),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(times[times.len() - 1]),
        &digest.finalize().to_hex()[..16],
    );
    if let (Some(a), Some(b)) = (cpu_start, thread_cpu_time()) {
        let share = (b - a).as_secs_f64() / wall.as_secs_f64();
        if share < 0.9 {
            println!(
                "  note: this thread ran only {:.0}% of the wall time (busy machine); \
                 numbers are inflated, try HARDWAY_BENCH_REPEAT=3",
                share * 100.0
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; arguments are ignored.
    let repeat = env_u64("HARDWAY_BENCH_REPEAT", 1);
    println!("det-keygen, single thread, wall clock, best of {repeat} per seed");
    report(
        Algorithm::Rsa2048,
        env_u64("HARDWAY_BENCH_RSA2048_SEEDS", 100),
        repeat,
    );
    report(Algorithm::Rsa3072, 20, repeat);
    report(Algorithm::Rsa4096, 10, repeat);
    report(Algorithm::EcdsaP256, 100, repeat);
    report(Algorithm::EcdsaP384, 100, repeat);
}
