set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
python3 benchmarks/lod_references.py /tmp/refs > /dev/null
mkdir -p $OUT/sphere
t=$(python3 -c 'import numpy as np; print(float(np.load("out/peer/gpu3/sphere/job_1x.npz")["seconds"]))')
python3 benchmarks/peer_lod/peer.py out/peer/gpu3/sphere/job_1x.npz --seconds $t --out $OUT/sphere/peer_1x.npz
python3 benchmarks/peer_lod/peer.py out/peer/gpu3/sphere/job_1x.npz --seconds $(python3 -c "print(2 * $t)") --out $OUT/sphere/peer_2x.npz
bash benchmarks/peer_lod/gpu_peer_lod.sh torus /tmp/refs/bumpy_torus.bam 500
cd $OUT && tar cf all.tar sphere torus && rm -rf sphere torus
