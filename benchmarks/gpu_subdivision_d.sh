#!/usr/bin/env bash
# GPU (owner): issue 22's equal-triangle comparisons with each refined quad split along its
# better diagonal (SubdivisionScenario.choose_diagonals, `diagonals` in the JSON). Run from
# the repo root after `source .gpu/activate`; one JSON line per bench, in this order:
# (1) models/panda, the issue's 120-triangle cage, 2 levels, at the CPU rows' settings
#     (96^2, 256^2 maps, 400 steps: the same command as on the 2-core CPU);
# (2) the procedural torus, a 500-triangle cage, at the CPU rows' settings (64^2, 256^2, 100 steps);
# (3) the procedural torus, a 200-triangle cage, the same settings;
# (4) models/panda at this machine's settings (128^2, 512^2 maps, 1000 steps; gpu_subdivision_a.sh);
# (5) the procedural torus, 500-triangle cage, 128^2, 512^2 maps, 1000 steps.
# Each beside the LOD job's scenario at the same final triangle count (`lod`,
# `psnr_written_gain_over_lod`), then again without the diagonal choice (--diagonal-rounds 0
# --no-lod), except (3). About 8 minutes.
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
bench() { timeout 150 python3 -m optimizer bench subdivision --json "$@" || echo "{\"failed\": \"$*\"}"; }
ab() { bench "$@"; bench "$@" --diagonal-rounds 0 --no-lod; }
ab --source models/panda --cage-triangles 120 --levels 2 --res 96 --steps 400 --texture-size 256
ab --cage-triangles 500 --levels 2 --res 64 --steps 100 --texture-size 256
bench --cage-triangles 200 --levels 2 --res 64 --steps 300 --texture-size 256
ab --source models/panda --cage-triangles 120 --levels 2 --res 128 --steps 1000 --texture-size 512
ab --cage-triangles 500 --levels 2 --res 128 --steps 1000 --texture-size 512
