#!/usr/bin/env bash
# Issue 24 on the GPU: the large sizes of the dimension experiment at equal estimates per
# parameter (docs/METHOD.md, section 2b): each run takes ceil(120 / f) steps, f the
# fraction of the parameters a per-pixel step names (measured over 8 held-out views
# first), so a parameter is named in 120 steps on average at every size: textures 512^2
# and 1024^2 (f about 0.10 and 0.027: ~1,200 and ~4,400 steps) and icospheres of 40,962
# and 163,842 vertices (f about 0.32 and 0.26: ~380 and ~460 steps), both estimators,
# 128^2 renders, seed 0. The smaller sizes ran on the CPU (docs/dimension_equal.csv);
# --include draws them in the same plot, --baseline the equal-compute runs
# (docs/dimension.csv). Prints every row as a JSON line; the plot lands in $OUT (or
# /tmp)/gpu_dimension/dimension_equal.png. About 1 minute on an H200.
# Run from the repository root after `source .gpu/activate`.
set -u
out=${OUT:-/tmp}/gpu_dimension
mkdir -p "$out"
python3 -m optimizer experiment dimension --equal-estimates 120 --texture-sizes 512,1024 --subdivisions 6,7 \
    --steps-per-frame 8 --include docs/dimension_equal.csv --baseline docs/dimension.csv --out "$out" 2>&1 \
    | grep -E "params|dimension:" >&2
python3 - "$out/dimension_equal.csv" <<'PY'
import csv, json, sys
for row in csv.DictReader(open(sys.argv[1])):
    print(json.dumps({"experiment": "dimension_equal", **row}))
PY
