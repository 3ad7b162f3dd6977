#!/usr/bin/env bash
# Issue 21's largest grid on the GPU: a 256^3 volume (67M parameters: density and RGB in two
# domains, each accumulator within the 2^27 buffer-texture limit) stepped 100 times at 128^2.
# Run from the repository root after `source .gpu/activate`.
set -u
timeout 110 python3 -m optimizer bench volume --grid 256 --res 128 --steps 100 --no-coarse-to-fine --json 2>/dev/null | tail -n 1
