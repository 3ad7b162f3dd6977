#!/usr/bin/env bash
# GPU (owner): the subdivision kind against the LOD job at equal final triangle count, with
# the final defaults (issue 22d: the cage chosen among decimations by its refined
# silhouettes, the cage fit, 5 displacement bakes; both sides write the higher of start and
# fit on validation views: compare `psnr_written_gain_over_lod`).
# Run from the repo root after `source .gpu/activate`; prints one JSON line per bench.
# (a) models/panda, a 120-triangle cage, 2 levels (2,832 triangles), beside the LOD
#     scenario at the same count, 1000 steps each at 128^2 with 512^2 maps (the job's
#     defaults); (b) the procedural bumpy torus, the bench's default 500-triangle cage,
#     2 levels (12,000 triangles), with the per-pass profile. About 3 minutes.
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 110 python3 -m optimizer bench subdivision --source models/panda --cage-triangles 120 --levels 2 \
  --res 128 --steps 1000 --texture-size 512 --json
timeout 120 python3 -m optimizer bench subdivision --cage-triangles 500 --levels 2 --res 128 --steps 1000 \
  --texture-size 512 --profile --json
