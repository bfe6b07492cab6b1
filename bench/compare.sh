#!/usr/bin/env bash
# hardway against the cfssl + kubectl + tar pipeline users run today, in the same run, as ratios.
#
# usage: bench/compare.sh [N ...]            (default: 2 50 200 1000 workers)
#   ALGS="rsa-2048 ecdsa-p256"               key algorithms to time hardway with
#   BASELINE=path/to/pipeline.sh             the baseline (default: ../shared/baseline/pipeline.sh if present)
#   BASELINE_PHASE=certs|all                 which baseline phase to time (default: all)
#   BASELINE_MAX=200                         skip the baseline above this many workers (it takes ~0.3 s/worker)
#   HARDWAY=target/release/hardway           the binary (default: built with cargo build --release --locked)
# Prints one line per (N, algorithm): cold and warm hardway times, peak memory, the baseline time and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(2 50 200 1000)
ALGS=${ALGS:-"rsa-2048 ecdsa-p256"}
BASELINE=${BASELINE:-../shared/baseline/pipeline.sh}
BASELINE_PHASE=${BASELINE_PHASE:-all}
BASELINE_MAX=${BASELINE_MAX:-200}
if [ -z "${HARDWAY:-}" ]; then
  cargo build --release --locked --quiet
  HARDWAY=target/release/hardway
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hardway-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 -c "import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(b'bench seed').digest())" > "$WORK/seed"
chmod 600 "$WORK/seed"

# The seed cluster's topology with N workers named and numbered as the baseline names them.
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

printf '%-6s %-11s %9s %9s %9s %10s %9s %9s\n' workers algorithm cold_s warm_ms peak_MiB baseline_s cold_x warm_x
for N in "${NS[@]}"; do
  base=""
  if [ -x "$BASELINE" ] && [ "$N" -le "$BASELINE_MAX" ] && command -v cfssl >/dev/null && command -v kubectl >/dev/null; then
    t0=$(now); "$BASELINE" "$N" "$BASELINE_PHASE" "$WORK/baseline" >/dev/null 2>&1; t1=$(now)
    base=$(secs "$t0" "$t1")
  fi
  for ALG in $ALGS; do
    N=$N recipe "$N" "$ALG" > "$WORK/r.toml"
    rm -rf "$WORK/store" "$WORK/out"
    run() { "$HARDWAY" build --json --seed-file "$WORK/seed" --store "$WORK/store" --out "$WORK/out" "$WORK/r.toml" 2>/dev/null; }
    t0=$(now); cold_json=$(run); t1=$(now)
    cold=$(secs "$t0" "$t1")
    # warm: best of 5 no-op rebuilds, whole process
    warm=999
    for _ in 1 2 3 4 5; do
      t0=$(now); run >/dev/null; t1=$(now)
      warm=$(python3 -c "print(min($warm, ($t1 - $t0) * 1000))")
    done
    peak=$(python3 -c "import json,sys; print(f\"{json.loads(sys.argv[1]).get('peak_rss_kib', 0) / 1024:.1f}\")" "$cold_json")
    if [ -n "$base" ]; then
      cx=$(python3 -c "print(f'{$base / $cold:.1f}x')"); wx=$(python3 -c "print(f'{$base * 1000 / $warm:.0f}x')")
    else
      base="-"; cx="-"; wx="-"
    fi
    printf '%-6s %-11s %9s %9.1f %9s %10s %9s %9s\n' "$N" "$ALG" "$cold" "$warm" "$peak" "$base" "$cx" "$wx"
  done
done
