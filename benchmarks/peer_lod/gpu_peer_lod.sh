#!/usr/bin/env bash
# The LOD job against the exact-gradient peer at equal time (issue 25; docs/BENCHMARKS.md):
# for each reference, the job (3000 steps, 512^2 samples: --res 256, 2x2 supersampled)
# takes T seconds; the peer, started from the job's decimate-and-bake LOD, runs T and 2T
# seconds; the job runs again with as many steps as fill about 2T. Every LOD comes back
# as .npz for judge.py / autoshader_judge.py. Usage, after `source .gpu/activate`:
#   benchmarks/peer_lod/gpu_peer_lod.sh NAME SOURCE TRIANGLES [NAME SOURCE TRIANGLES ...]
set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
bash benchmarks/peer_lod/build_nvdiffrast.sh > $OUT/build.log 2>&1 || { tail $OUT/build.log; exit 1; }
common="--res 256 --texture-size 512"
while [ $# -ge 3 ]; do
  name=$1 source=$2 triangles=$3; shift 3
  mkdir -p $OUT/$name
  python3 benchmarks/peer_lod/job.py $source --triangles $triangles --steps 3000 $common --out /tmp/$name/1x | tee -a $OUT/$name/runs.jsonl
  read t steps2 < <(python3 -c "
import json, numpy as np
d = np.load('/tmp/$name/1x/job.npz'); t = float(d['seconds'])
print(t, round(3000 * (1 + t / json.loads(open('$OUT/$name/runs.jsonl').readlines()[-1])['phases']['run'])))")
  python3 benchmarks/peer_lod/peer.py /tmp/$name/1x/job.npz --seconds $t --out $OUT/$name/peer_1x.npz | tee -a $OUT/$name/runs.jsonl
  python3 benchmarks/peer_lod/peer.py /tmp/$name/1x/job.npz --seconds $(python3 -c "print(2 * $t)") --out $OUT/$name/peer_2x.npz | tee -a $OUT/$name/runs.jsonl
  python3 benchmarks/peer_lod/job.py $source --triangles $triangles --steps $steps2 $common --out /tmp/$name/2x | tee -a $OUT/$name/runs.jsonl
  cp /tmp/$name/1x/job.npz $OUT/$name/job_1x.npz
  python3 -c "
import numpy as np
d = dict(np.load('/tmp/$name/2x/job.npz')); np.savez_compressed('$OUT/$name/job_2x.npz', **{k: v for k, v in d.items() if not k.startswith(('train_', 'source_'))})"
done
