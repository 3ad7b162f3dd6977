#!/usr/bin/env bash
# Where the exact-gradient peer's lead on the bumpy torus comes from (issue 25): the job
# (T) and a variant of it, the peer for T as it is and with one of its advantages taken
# away at a time, and the job's own steps started from the peer's LOD (from_peer.py).
# Every JSON line goes to OUT/runs.jsonl, every LOD to OUT/torus_diagnosis.npz (judge.py's
# input, prefixed peer_NAME_ / ours2x_ as gpu_peer_lod.sh packs them). Usage, after
# `source .gpu/activate`, from the repository root:
#   benchmarks/peer_lod/gpu_torus_diagnosis.sh [JOB_SETTINGS_JSON]
set -u
export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH
bash benchmarks/peer_lod/build_nvdiffrast.sh > /tmp/build.log 2>&1 || { tail /tmp/build.log; exit 1; }
variant=${1:-'{"live_normals": true}'}
refs=/tmp/refs w=/tmp/diagnosis
mkdir -p $refs $w
python3 benchmarks/lod_references.py $refs > /dev/null
source=$refs/bumpy_torus.bam
common="--triangles 500 --steps 3000 --res 256 --texture-size 512"
python3 benchmarks/peer_lod/job.py $source $common --out $w/job | sed 's/^{/{"run": "job", /' | tee -a $OUT/runs.jsonl
python3 benchmarks/peer_lod/job.py $source $common --settings "$variant" --out $w/variant \
  | sed "s/^{/{\"run\": \"job $variant\", /" | tee -a $OUT/runs.jsonl
t=$(python3 -c "import numpy as np; print(float(np.load('$w/job/job.npz')['seconds']))")
for item in "default:" "fixed_frames:--fixed-frames" "maps_frozen:--map-lr 0" "no_coverage:--coverage-weight 0" \
            "fixed_frames_maps_frozen:--fixed-frames --map-lr 0"; do
  name=${item%%:*} flags=${item#*:}
  python3 benchmarks/peer_lod/peer.py $w/job/job.npz --seconds $t --out $w/peer_$name.npz $flags \
    | sed "s/^{/{\"run\": \"peer $name\", /" | tee -a $OUT/runs.jsonl
done
for changes in '{}' '{"position_learning_rate": 5e-4}'; do
  python3 benchmarks/peer_lod/from_peer.py $source $w/job/job.npz $w/peer_default.npz --settings "$changes" \
    | sed 's/^{/{"run": "from_peer", /' | tee -a $OUT/runs.jsonl
done
python3 benchmarks/peer_lod/pack.py $OUT/torus_diagnosis.npz $w/job/job.npz $w/variant/job.npz $w/peer_*.npz
