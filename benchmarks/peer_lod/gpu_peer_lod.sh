#!/usr/bin/env bash
# The LOD job against the exact-gradient peer at equal time (issue 25; docs/BENCHMARKS.md):
# for each reference, the job (3000 steps, 512^2 samples: --res 256, 2x2 supersampled)
# takes T seconds; the peer, started from the job's decimate-and-bake LOD, runs T and 2T
# seconds; the job runs again with as many steps as fill about 2T. Every LOD comes back in
# OUT/NAME.npz (the device tool returns at most 8 files) for judge.py and
# autoshader_judge.py, every run's JSON line in OUT/runs.jsonl. Usage, after
# `source .gpu/activate`, from the repository root:
#   benchmarks/peer_lod/gpu_peer_lod.sh NAME SOURCE TRIANGLES [NAME SOURCE TRIANGLES ...]
set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
bash benchmarks/peer_lod/build_nvdiffrast.sh > /tmp/build.log 2>&1 || { tail /tmp/build.log; exit 1; }
common="--res 256 --texture-size 512"
while [ $# -ge 3 ]; do
  name=$1 source=$2 triangles=$3; shift 3
  w=/tmp/peer_lod/$name
  mkdir -p $w
  python3 benchmarks/peer_lod/job.py $source --triangles $triangles --steps 3000 $common --out $w/1x | tee $w/job_1x.json
  read t steps2 < <(python3 -c "
import json, numpy as np
t = float(np.load('$w/1x/job.npz')['seconds']); run = json.load(open('$w/job_1x.json'))['phases']['run']
print(t, round(3000 * (1 + t / run)))")
  python3 benchmarks/peer_lod/peer.py $w/1x/job.npz --seconds $t --out $w/peer_1x.npz | tee $w/peer_1x.json
  python3 benchmarks/peer_lod/peer.py $w/1x/job.npz --seconds $(python3 -c "print(2 * $t)") --out $w/peer_2x.npz | tee $w/peer_2x.json
  python3 benchmarks/peer_lod/job.py $source --triangles $triangles --steps $steps2 $common --out $w/2x | tee $w/job_2x.json
  cat $w/*.json | sed "s/^{/{\"reference\": \"$name\", /" >> $OUT/runs.jsonl
  python3 benchmarks/peer_lod/pack.py $OUT/$name.npz $w/1x/job.npz $w/2x/job.npz $w/peer_1x.npz $w/peer_2x.npz
done
