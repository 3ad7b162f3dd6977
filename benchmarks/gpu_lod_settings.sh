#!/usr/bin/env bash
# GPU, issue 25: the LOD job's settings at the equal-time comparison's size (3000 steps,
# --res 256, 512^2 maps, seed 0) on the bumpy torus (500 triangles) and the panda (300),
# with the summed position estimate (the default since 2026-12-02) and one change at a
# time; one JSON line per run (benchmarks/lod_quality.py: metrics.json's figures).
# docs/BENCHMARKS.md, "What the peer's lead is made of". Usage, after
# `source .gpu/activate`, from the repository root:  benchmarks/gpu_lod_settings.sh
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
refs=$(mktemp -d)
python3 benchmarks/lod_references.py "$refs" > /dev/null
size='"steps": 3000, "resolution": 256'
variants=("{$size}" "{$size, \"position_normalised\": true}" "{$size, \"coverage_weight\": 0.25}"
          "{$size, \"coverage_weight\": 1}" "{$size, \"position_learning_rate\": 0.001}"
          "{$size, \"position_learning_rate\": 0.004}" "{$size, \"rounds\": 8}" "{$size, \"live_normals\": true}"
          "{\"steps\": 6000, \"resolution\": 256}")
python3 benchmarks/lod_quality.py "$refs/bumpy_torus.bam" 500 "${variants[@]}"
python3 benchmarks/lod_quality.py models/panda 300 "${variants[@]}"
