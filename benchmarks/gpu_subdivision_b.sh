#!/usr/bin/env bash
# GPU (owner): the paper-sized subdivision run (its figure 1: a ~2K-triangle cage, 2 levels,
# ~50K triangles, 1024^2 maps; "useful after 130 s, converged after 720 s" on an Intel Arc
# A770). The procedural bumpy torus, a 2,000-triangle cage, 2 levels (24,000 quads =
# 48,000 triangles), 1024^2 albedo, normal and displacement maps, 512^2 renders (2x2
# supersampled): held-out PSNR every 10 s of stepping for 120 s (`curve`: [seconds,
# step, psnr]; the scoring is not counted, the bakes between rounds are). Under 4 minutes
# with start-up and the initial bakes. No LOD comparison here (script _a has them).
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 230 python3 -m optimizer bench subdivision --cage-triangles 2000 --levels 2 --res 512 \
  --texture-size 1024 --steps 200000 --seconds 120 --report-every 10 --bake-views 16 --no-lod --json
