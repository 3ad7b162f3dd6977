#!/usr/bin/env bash
# The volume scenario on the GPU (issue 21), from the repo root after `source .gpu/activate`:
# psnr_views at 10, 30 and 60 s of stepping (start-up, shader compilation and the
# evaluations excluded; the loop syncs with the GPU before each reading of the clock, so
# a mark is read at the first sync past it: "checkpoints" holds the exact seconds and
# steps), and ms/step, at SPEC's full size (64^3 grid, 128^2 images). Peer (exact
# gradients, PyTorch autodiff through the same marcher, Adam lr 0.01, H200): 38.7 / 45.1 /
# 50.1 dB at 10 / 30 / 60 s, 5.5 ms/step. Each line printed is one JSON object; ~3.5 min.
set -euo pipefail
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"

# 1. The defaults: coarse to fine 16^3 (first 15% of the time) -> 32^3 (to 40%) -> 64^3,
#    8 steps per renderFrame() (the same results as 1; less per-frame engine work).
python3 -m optimizer bench volume --grid 64 --res 128 --seconds 10,30,60 --steps-per-frame 8 --json
# 2. The same without coarse to fine (64^3 from the start): does the schedule help here?
python3 -m optimizer bench volume --grid 64 --res 128 --seconds 10,30,60 --steps-per-frame 8 --no-coarse-to-fine --json
# 3. ms/step and its split by pass (P, the three renders, G) at 64^3, one step per frame.
python3 -m optimizer bench volume --grid 64 --res 128 --steps 300 --no-coarse-to-fine --profile --json
