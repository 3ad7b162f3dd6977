#!/usr/bin/env bash
# Issue 24 on the GPU: the cube at R = 16, 64, 256, 3 seeds, each run stepping for 10.5 s
# (then stopping at its next report step), error and stepping seconds at a dense grid of
# report steps (x1.2 from 100): `err_at_seconds` holds the error at 0.1, 0.3, 1, 2, 4 and
# 10 s of stepping (the last report step reached by then; mean over seeds), `err` /
# `wall_s_at` the whole curve, `err_iterate` the raw iterate's error beside the averaged
# output's. Then the R = 64 run with averaging off and once with --profile. One JSON line
# each; about 2.5 minutes on an H200 (3 x 3 x 10.5 s of stepping plus start-up).
# Run from the repository root after `source .gpu/activate`.
set -u
for res in 16 64 256; do
  python3 -m optimizer bench cube --res $res --steps 400000 --seeds 3 --until-seconds 10.5 \
      --steps-per-frame 8 --json 2>/dev/null | tail -n 1
done
python3 -m optimizer bench cube --res 64 --steps 400000 --seeds 3 --until-seconds 4.5 \
    --steps-per-frame 8 --average-eta off --json 2>/dev/null | tail -n 1
python3 -m optimizer bench cube --res 64 --steps 1000 --seeds 1 --profile --json 2>/dev/null | tail -n 1
