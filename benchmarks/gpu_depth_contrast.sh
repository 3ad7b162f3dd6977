#!/usr/bin/env bash
# GPU, issue 25: the depth term weighted by the reference's contrast (LodSettings.
# depth_contrast, off by default) at the equal-time comparison's size (3000
# steps, --res 256, 512^2 maps, seed 0) on the three references, against the uniform
# depth term (0) and against the weight left unscaled by the render's width (7.5 at this
# size is what 30 was before the per-1/256 scaling); one JSON line per run
# (benchmarks/lod_quality.py: metrics.json's figures). docs/BENCHMARKS.md, "The depth
# term weighted by contrast". Usage, after `source .gpu/activate`, from the repository
# root:  benchmarks/gpu_depth_contrast.sh
set -eu
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
refs=$(mktemp -d)
python3 benchmarks/lod_references.py "$refs" > /dev/null
size='"steps": 3000, "resolution": 256'
variants=("{$size, \"depth_contrast\": 0}" "{$size, \"depth_contrast\": 30}" "{$size, \"depth_contrast\": 7.5}")
python3 benchmarks/lod_quality.py "$refs/bumpy_torus.bam" 500 "${variants[@]}"
python3 benchmarks/lod_quality.py models/panda 300 "${variants[@]}"
python3 benchmarks/lod_quality.py "$refs/bumpy_sphere.obj" 200 "${variants[@]}"
