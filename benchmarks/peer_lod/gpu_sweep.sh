#!/usr/bin/env bash
# The peer's learning rates on the panda (docs/BENCHMARKS.md, "The peer's learning rates"):
# the job once (its T), then the peer for T at each (position, map) rate pair; each LOD
# comes back as OUT/peer_POSITION_MAP.npz (judge.py SOURCE /tmp/sweep/job.npz NAME=FILE ...
# needs the job.npz too: copied to OUT/job.npz). After `source .gpu/activate`:
#   benchmarks/peer_lod/gpu_sweep.sh
set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
bash benchmarks/peer_lod/build_nvdiffrast.sh > /tmp/build.log 2>&1 || { tail /tmp/build.log; exit 1; }
python3 benchmarks/peer_lod/job.py models/panda --triangles 300 --steps 3000 --res 256 --texture-size 512 --out /tmp/sweep
cp /tmp/sweep/job.npz $OUT/
s=$(python3 -c 'import numpy as np; print(float(np.load("/tmp/sweep/job.npz")["seconds"]))')
for lrs in "1e-3 3e-3" "3e-4 3e-3" "1e-3 1e-2" "3e-3 1e-3" "1e-3 3e-2"; do
  set -- $lrs
  python3 benchmarks/peer_lod/peer.py /tmp/sweep/job.npz --seconds $s --position-lr $1 --map-lr $2 --out $OUT/peer_$1_$2.npz
done
