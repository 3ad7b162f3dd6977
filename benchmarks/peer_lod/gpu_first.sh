#!/usr/bin/env bash
# First GPU call: build nvdiffrast, run the panda's job, try the peer.
set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
time bash benchmarks/peer_lod/build_nvdiffrast.sh > $OUT/build.log 2>&1; tail -3 $OUT/build.log
cp .nvdiffrast/_nvdiffrast_c*.so $OUT/ 2>/dev/null
python3 -c 'import torch, nvdiffrast.torch as dr; print(torch.__version__, dr.__file__)'
mkdir -p $OUT/panda
python3 benchmarks/peer_lod/job.py models/panda --triangles 300 --steps 3000 --res 256 --texture-size 512 --out /tmp/panda
cp /tmp/panda/ours/metrics.json $OUT/panda/
s=$(python3 -c 'import numpy as np; print(float(np.load("/tmp/panda/job.npz")["seconds"]))')
echo "job seconds $s"
python3 benchmarks/peer_lod/peer.py /tmp/panda/job.npz --seconds 5 --out $OUT/panda/smoke.npz
for lrs in "1e-3 3e-3" "3e-4 3e-3" "1e-3 1e-2" "3e-3 1e-3"; do
  set -- $lrs
  python3 benchmarks/peer_lod/peer.py /tmp/panda/job.npz --seconds $s --position-lr $1 --map-lr $2 --out $OUT/panda/peer_$1_$2.npz
done
cp /tmp/panda/job.npz $OUT/panda/
