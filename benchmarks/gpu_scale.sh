#!/usr/bin/env bash
# Issue 25's scale step on the GPU: today's planes and reference beside the 16-bit colour
# plane and the reused reference page, interleaved, then the profile of the default.
for round in 1 2; do
  python3 -m optimizer bench scale --texture-size 4096 --res 1024 --steps 100 --color-bits 32 --redraw-reference --json 2>/dev/null | tail -n 1
  python3 -m optimizer bench scale --texture-size 4096 --res 1024 --steps 100 --json 2>/dev/null | tail -n 1
done
python3 -m optimizer bench scale --texture-size 4096 --res 1024 --steps 100 --profile --json 2>/dev/null | tail -n 1
