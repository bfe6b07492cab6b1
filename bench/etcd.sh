#!/usr/bin/env bash
# etcd on the masters: what it costs to build, and that adding a worker does not recompress etcd.
#
# usage: bench/etcd.sh [WORKERS]     (default 200)
#   HARDWAY=target/release/hardway   the binary (default: built with cargo build --release --locked)
# The etcd release cannot be downloaded here: the stand-in tarball is made, in upstream's layout, from Debian's
# etcd-server/etcd-client binaries (about 38 MB, larger than v3.3.5's), and admitted with `hardway add`, so every
# build below has the source in the store. Prints, in one run:
#   - the cold build of recipes/seed.toml (2 masters with etcd, 2 workers, lb);
#   - a WORKERS-worker recipe with etcd: cold, then one worker added (time and derivations built), and the same
#     +1 worker without [etcd] (today's cost);
#   - the baseline for the same bytes: GNU tar + gzip -6 of each master's files with the etcd binaries, as the
#     tutorial's copy step would ship them (one compression per master), and its ratio to hardway's cold build.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "needs etcd-server and etcd-client" >&2; exit 2; }
if [ -z "${HARDWAY:-}" ]; then
  cargo build --release --locked --quiet
  HARDWAY=target/release/hardway
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hardway-bench-etcd.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 -c "import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(b'bench seed').digest())" > "$WORK/seed"
chmod 600 "$WORK/seed"
top=etcd-v3.3.5-linux-amd64
mkdir -p "$WORK/src/$top"
cp "$(command -v etcd)" "$(command -v etcdctl)" "$WORK/src/$top/"
tar -C "$WORK/src" --owner=0 --group=0 --mtime=@0 --sort=name -czf "$WORK/$top.tar.gz" "$top"
sha=$(sha256sum "$WORK/$top.tar.gz" | cut -d' ' -f1)

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
with_etcd() { sed -e "s|^urls = .*|urls = [\"file://$WORK/$top.tar.gz\"]|" -e "s|^sha256 = .*|sha256 = \"$sha\"|" recipes/seed.toml; }
workers() { # FROM TO: worker hosts
  for ((i = $1; i < $2; i++)); do
    printf '\n[[hosts]]\nname = "worker-%d"\nip = "10.128.%d.%d"\nrole = "worker"\n' $i $((16 + i / 250)) $((i % 250 + 1))
  done
}
build() { # DIR RECIPE -> prints built count
  "$HARDWAY" build --json --seed-file "$WORK/seed" --store "$1/store" --out "$1/out" "$2" 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['built'])"
}
fresh() { # DIR RECIPE: a store holding only the source
  mkdir -p "$1"; "$HARDWAY" add "$WORK/$top.tar.gz" --recipe "$2" --store "$1/store" >/dev/null
}

# 1. recipes/seed.toml, cold (source in the store), best of 3.
with_etcd > "$WORK/seed.toml"
best=999
for r in 1 2 3; do
  D="$WORK/seed-$r"; fresh "$D" "$WORK/seed.toml"
  t0=$(now); build "$D" "$WORK/seed.toml" >/dev/null; t1=$(now)
  best=$(python3 -c "print(min($best, $t1 - $t0))")
done
printf 'seed.toml with etcd, cold (source in store): %.3f s\n' "$best"

# Baseline: each master's files with the etcd binaries, tar + gzip -6 once per master (the tutorial's way).
mkdir -p "$WORK/base"
tar -xzf "$WORK/seed-1/out/master1.tar.gz" -C "$WORK/base"
t0=$(now)
for m in master1 master2; do tar -C "$WORK/base" --owner=0 --group=0 -cf - . | gzip -6 > "$WORK/base-$m.tar.gz"; done
t1=$(now)
base=$(secs "$t0" "$t1")
printf 'baseline: tar | gzip -6 of both masters'"'"' files: %s s (%.1fx hardway'"'"'s whole cold build)\n' "$base" \
  "$(python3 -c "print($base / $best)")"

# 2. N workers with etcd: cold, then one more worker.
for variant in etcd none; do
  D="$WORK/n-$variant"
  if [ $variant = etcd ]; then with_etcd; else awk '/^\[etcd\]/{exit} {print}' recipes/seed.toml; fi > "$WORK/base-$variant.toml"
  { cat "$WORK/base-$variant.toml"; workers 0 "$N"; } > "$WORK/$variant-$N.toml"
  { cat "$WORK/base-$variant.toml"; workers 0 $((N + 1)); } > "$WORK/$variant-$((N + 1)).toml"
  if [ $variant = etcd ]; then fresh "$D" "$WORK/$variant-$N.toml"; else mkdir -p "$D"; fi
  t0=$(now); build "$D" "$WORK/$variant-$N.toml" >/dev/null; t1=$(now)
  cold=$(secs "$t0" "$t1")
  t0=$(now); built=$(build "$D" "$WORK/$variant-$((N + 1)).toml"); t1=$(now)
  add=$(python3 -c "print(f'{($t1 - $t0) * 1000:.1f}')")
  printf '%d workers, etcd=%s: cold %s s; +1 worker %s ms (%s derivations built)\n' "$N" "$variant" "$cold" "$add" "$built"
done
