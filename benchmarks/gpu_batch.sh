#!/usr/bin/env bash
# Runs benchmark scripts one after another on the GPU machine, each with its own time limit,
# keeping every script's output in $OUT/<name>.log (what the device tool brings back).
# Usage (from the repository root, after `source .gpu/activate`):
#   benchmarks/gpu_batch.sh SECONDS script1.sh [SECONDS script2.sh ...]
set -u
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/gpu_batch}
mkdir -p "$out"
while [ $# -ge 2 ]; do
  limit=$1 script=$2
  shift 2
  name=$(basename "$script" .sh)
  echo "=== $name (limit ${limit}s) $(date -u +%T)"
  timeout "$limit" bash "$script" > "$out/$name.log" 2>&1
  echo "=== $name rc=$? $(date -u +%T)"
  grep -E '^\{' "$out/$name.log" | cut -c1-1500
done
