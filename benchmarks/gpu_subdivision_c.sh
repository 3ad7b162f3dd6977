#!/usr/bin/env bash
# GPU (owner): the paper-sized cage and maps of gpu_subdivision_b.sh (2,000-triangle cage,
# 2 levels = 48,000 triangles, 1024^2 maps) at 256^2 renders, for the longest stepping one
# 4-minute script allows: held-out PSNR every 30 s for 170 s (`curve`).
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 235 python3 -m optimizer bench subdivision --cage-triangles 2000 --levels 2 --res 256 \
  --texture-size 1024 --steps 400000 --seconds 170 --report-every 30 --bake-views 8 --no-lod --json
