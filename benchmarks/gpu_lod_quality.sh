#!/usr/bin/env bash
# GPU (owner), issue 25: the LOD job's held-out quality with the coverage (silhouette) term
# (--coverage-weight 0.25) against the default (0, unchanged by issue 25) on the three
# references of benchmarks/lod_references.py (panda at 300 triangles, the bumpy torus at
# 500, the bumpy sphere at 200), --steps 3000 --res 256 --texture-size 512, seed 0.
# One JSON line per run: metrics.json's figures (docs/BENCHMARKS.md, "The LOD job's quality
# at a fixed step count"). About 2 minutes on an H200.
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benchmarks/lod_references.py "$work/refs" > "$work/refs.txt"
start=$SECONDS
while read -r source triangles; do
  for weight in 0 0.25; do
    if (( SECONDS - start > 200 )); then echo '{"skipped": "time"}'; continue; fi
    out="$work/out-$(basename "$source")-$weight"
    python3 -m optimizer optimize "$source" --triangles "$triangles" --steps 3000 --res 256 --texture-size 512 \
      --coverage-weight "$weight" --out "$out" > /dev/null 2> "$work/log"  || { tail -3 "$work/log"; continue; }
    python3 - "$out/metrics.json" "$source" "$weight" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
keys = ("triangles", "steps", "res", "psnr_baseline", "iou_baseline", "psnr_after", "ssim_after", "iou_after", "written",
        "psnr_written", "iou_written", "optimize_seconds", "ms_per_step", "seconds", "device")
print(json.dumps({"source": sys.argv[2].rsplit("/", 1)[-1], "coverage_weight": float(sys.argv[3]), **{k: m[k] for k in keys}}))
PY
  done
done < "$work/refs.txt"
