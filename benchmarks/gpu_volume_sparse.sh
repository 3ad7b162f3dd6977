#!/usr/bin/env bash
# The volume's plateau fix (issue 21b) on the GPU, from the repo root after
# `source .gpu/activate`: psnr_views at 10, 30 and 60 s of stepping at SPEC's full size
# (64^3 grid, 128^2 images) with the sparse perturbation (one 2^3 block in K perturbed and
# updated per step). Before it (every voxel perturbed, no averaging; H200): 23.98 / 23.92 /
# 24.56 dB, 2.6 ms/step. Exact-gradient peer: 38.7 / 45.1 / 50.1 dB. Each line printed is
# one JSON object; ~3.5 min.
set -euo pipefail
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"

# 1. The defaults (sparse 8, lr 0.2 / 0.04, coarse to fine), 8 steps per frame.
python3 -m optimizer bench volume --grid 64 --res 128 --seconds 10,30,60 --steps-per-frame 8 --json
# 2. One block in 4 perturbed per step (more updates per voxel, more crosstalk; at 32^3 on
#    the CPU, 2000 steps, lr 0.1 / 0.02: equal to 8 by the end): which wins with ~20k steps?
python3 -m optimizer bench volume --grid 64 --res 128 --seconds 10,30,60 --steps-per-frame 8 --sparse 4 --json
# 3. ms/step and its split by pass at 64^3 (G sums only the perturbed voxels: fewer atomics).
python3 -m optimizer bench volume --grid 64 --res 128 --steps 300 --no-coarse-to-fine --profile --json
