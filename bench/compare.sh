#!/usr/bin/env bash
# hardway against the cfssl + kubectl + tar pipeline users run today, in the same run, as ratios.
#
# usage: bench/compare.sh [N ...]            (default: 2 50 200 1000 workers)
#   ALGS="rsa-2048 ecdsa-p256"               key algorithms to time hardway with
#   BASELINE=path/to/pipeline.sh             the baseline (default: bench/baseline/pipeline.sh, the tutorial's
#                                            cfssl + kubectl + tar workflow, carried in this repository)
#   BASELINE_MAX=200                         skip the baseline above this many workers (it takes ~0.3 s/worker)
#   HARDWAY=target/release/hardway           the binary (default: built with cargo build --release --locked)
# Prints one line per (N, algorithm): hardway's whole build cold (certificates, kubeconfigs, bundles) and warm
# (a no-op rebuild), its peak memory, the baseline's certs phase and whole pipeline, and the ratios
# baseline/hardway (higher is better for hardway).
set -euo pipefail
cd "$(dirname "$0")/.."
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(2 50 200 1000)
ALGS=${ALGS:-"rsa-2048 ecdsa-p256"}
BASELINE=${BASELINE:-bench/baseline/pipeline.sh}
BASELINE_MAX=${BASELINE_MAX:-200}
if [ -z "${HARDWAY:-}" ]; then
  cargo build --release --locked --quiet
  HARDWAY=target/release/hardway
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hardway-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 -c "import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(b'bench seed').digest())" > "$WORK/seed"
chmod 600 "$WORK/seed"

# The seed cluster's topology with N workers named and numbered as the baseline names them. The recipe stops
# before the hosts, so it has no [etcd] (the baseline ships no etcd either): bench/etcd.sh measures etcd.
recipe() { # N ALG
  sed -e "s/^algorithm = .*/algorithm = \"$2\"/" recipes/seed.toml | awk '/^\[\[hosts\]\]/{exit} {print}'
  for h in "master1 10.128.15.221 master" "master2 10.128.15.222 master" "lb 10.128.15.226 load-balancer"; do
    set -- $h; printf '\n[[hosts]]\nname = "%s"\nip = "%s"\nrole = "%s"\n' "$1" "$2" "$3"
  done
  for ((i = 0; i < N; i++)); do
    printf '\n[[hosts]]\nname = "worker-%d"\nip = "10.128.%d.%d"\nrole = "worker"\n' $i $((16 + i / 250)) $((i % 250 + 1))
  done
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

printf '%-6s %-11s %8s %8s %8s %10s %10s %9s %9s %9s\n' workers algorithm cold_s warm_ms peak_MiB \
  base_certs base_all certs_x all_x warm_x
# Stores are never deleted between runs: ext4 slows file creation right after mass deletions (it skips
# recently freed inodes), which would charge one run for the previous one's cleanup. Everything goes at exit.
for N in "${NS[@]}"; do
  rows=()
  for ALG in $ALGS; do
    D="$WORK/$N-$ALG"; mkdir -p "$D"
    N=$N recipe "$N" "$ALG" > "$D/r.toml"
    run() { "$HARDWAY" build --json --seed-file "$WORK/seed" --store "$D/store" --out "$D/out" "$D/r.toml" 2>/dev/null; }
    t0=$(now); cold_json=$(run); t1=$(now)
    cold=$(secs "$t0" "$t1")
    # warm: best of 5 no-op rebuilds, whole process
    warm=999
    for _ in 1 2 3 4 5; do
      t0=$(now); run >/dev/null; t1=$(now)
      warm=$(python3 -c "print(min($warm, ($t1 - $t0) * 1000))")
    done
    peak=$(python3 -c "import json,sys; print(f\"{json.loads(sys.argv[1]).get('peak_rss_kib', 0) / 1024:.1f}\")" "$cold_json")
    rows+=("$ALG $cold $warm $peak")
  done
  # The baseline runs after hardway, so its own clean-up (it wipes its directory) cannot slow hardway's runs.
  base=""; base_certs=""
  if [ -x "$BASELINE" ] && [ "$N" -le "$BASELINE_MAX" ] && command -v cfssl >/dev/null && command -v kubectl >/dev/null; then
    t0=$(now); TIMES="$WORK/times-$N" "$BASELINE" "$N" all "$WORK/baseline-$N" >/dev/null 2>&1; t1=$(now)
    base=$(secs "$t0" "$t1")
    base_certs=$(awk '$1 == "certs" {printf "%.3f", $2}' "$WORK/times-$N")
  fi
  for row in "${rows[@]}"; do
    set -- $row; ALG=$1; cold=$2; warm=$3; peak=$4
    if [ -n "$base" ]; then
      cx=$(python3 -c "print(f'{$base_certs / $cold:.1f}x')")
      ax=$(python3 -c "print(f'{$base / $cold:.1f}x')")
      wx=$(python3 -c "print(f'{$base * 1000 / $warm:.0f}x')")
      bc=$base_certs; ba=$base
    else
      bc="-"; ba="-"; cx="-"; ax="-"; wx="-"
    fi
    printf '%-6s %-11s %8s %8.1f %8s %10s %10s %9s %9s %9s\n' "$N" "$ALG" "$cold" "$warm" "$peak" "$bc" "$ba" "$cx" "$ax" "$wx"
  done
done
