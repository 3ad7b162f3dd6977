#!/usr/bin/env bash
# Interleaved A/B of benchmark commands in one sitting: each round runs every bench on A,
# then on B, in fresh processes (`python3 -m optimizer bench ... --json`), appending
# "VERSION ROUND JSON" lines to OUTDIR/BENCH.jsonl. A and B are source trees (e.g.
# `git archive COMMIT optimizer shaders models | tar -x -C A`), put first on PYTHONPATH.
# Usage: benchmarks/ab_bench.sh A B OUTDIR ROUNDS "cube --res 64 --steps 1000 --seeds 3" "lod" ...
# On the GPU machine: `source .gpu/activate && benchmarks/ab_bench.sh ...`.
set -u
a=$1 b=$2 out=$3 rounds=$4
shift 4
base=${PYTHONPATH:-}
mkdir -p "$out"
for round in $(seq "$rounds"); do
  for version in "$a" "$b"; do
    for bench in "$@"; do
      name=${bench%% *}
      line=$(PYTHONPATH="$version${base:+:$base}" timeout 300 python3 -m optimizer bench $bench --json 2>/dev/null | tail -n 1)
      echo "$(basename "$version") $round $line" >> "$out/$name.jsonl"
    done
  done
done
