#!/usr/bin/env bash
# The peer's learning rates on the panda's job (out/peer/panda/job.npz, carried).
set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
bash benchmarks/peer_lod/build_nvdiffrast.sh > $OUT/build.log 2>&1; tail -2 $OUT/build.log
cp .nvdiffrast/_nvdiffrast_c*.so $OUT/
s=$(python3 -c 'import numpy as np; print(float(np.load("out/peer/panda/job.npz")["seconds"]))')
python3 benchmarks/peer_lod/peer.py out/peer/panda/job.npz --seconds 3 --out $OUT/smoke.npz || exit 1
for lrs in "1e-3 3e-3" "3e-4 3e-3" "1e-3 1e-2" "3e-3 1e-3" "1e-3 3e-2"; do
  set -- $lrs
  python3 benchmarks/peer_lod/peer.py out/peer/panda/job.npz --seconds $s --position-lr $1 --map-lr $2 --out $OUT/peer_$1_$2.npz
done
