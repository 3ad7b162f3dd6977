#!/usr/bin/env bash
# GPU (owner), issue 25: the LOD job's held-out quality with the coverage (silhouette) term
# (--coverage-weight 0.25, then 1) against the default (0, kept by issue 25) on the three
# references of benchmarks/lod_references.py (panda at 300 triangles, the bumpy torus at
# 500, the bumpy sphere at 200), --steps 3000 --res 256 --texture-size 512, seed 0.
# One JSON line per run: metrics.json's figures (docs/BENCHMARKS.md, "The LOD job's quality
# at a fixed step count"). The weights run in that order over all three references; a run
# that would start after 200 s prints {"skipped": ...} instead, so the script ends < 4 min.
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benchmarks/lod_references.py "$work/refs" > "$work/refs.txt"
start=$SECONDS
for weight in 0 0.25 1; do
  while read -r source triangles; do
    name=$(basename "$source")
    if (( SECONDS - start > 200 )); then echo "{\"skipped\": \"$name $weight: time\"}"; continue; fi
    out="$work/out-$name-$weight"
    python3 -m optimizer optimize "$source" --triangles "$triangles" --steps 3000 --res 256 --texture-size 512 \
      --coverage-weight "$weight" --out "$out" > /dev/null 2> "$work/log" || { tail -3 "$work/log"; continue; }
    python3 - "$out/metrics.json" "$name" "$weight" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
keys = ("triangles", "steps", "res", "psnr_baseline", "iou_baseline", "psnr_after", "ssim_after", "iou_after", "written",
        "psnr_written", "iou_written", "optimize_seconds", "ms_per_step", "seconds", "device")
print(json.dumps({"source": sys.argv[2], "coverage_weight": float(sys.argv[3]), **{k: m[k] for k in keys}}))
PY
  done < "$work/refs.txt"
done
