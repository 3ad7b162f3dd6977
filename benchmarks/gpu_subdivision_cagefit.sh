#!/usr/bin/env bash
# GPU (owner): the least-squares cage fit (optimizer/subdivision/cagefit.py) on and off,
# the subdivision fit against the LOD job at equal final triangle count. Run from the
# repo root after `source .gpu/activate`; prints one JSON line per bench ("cage_fit":
# which start was kept and both validation scores). (a) the procedural torus, a
# 500-triangle cage, 2 levels (12,000 triangles), 128^2, 512^2 maps, 1000 steps, with the
# LOD job; (b) the same without the cage fit and without the LOD job (its figures are
# (a)'s). About 3 minutes.
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 110 python3 -m optimizer bench subdivision --cage-triangles 500 --levels 2 --res 128 --steps 1000 \
  --texture-size 512 --json
timeout 70 python3 -m optimizer bench subdivision --cage-triangles 500 --levels 2 --res 128 --steps 1000 \
  --texture-size 512 --cage-fit-rounds 0 --no-lod --json
