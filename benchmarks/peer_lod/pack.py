"""Packs one reference's runs into the single file the device tool returns and judge.py
reads (gpu_peer_lod.sh, gpu_torus_diagnosis.sh):

    python3 benchmarks/peer_lod/pack.py OUT.npz JOB.npz SECOND_JOB.npz [PEER.npz ...]

JOB.npz (job.py's) whole but for its training views and source arrays; from SECOND_JOB.npz
(job.py's again: a longer run or a variant) what it wrote, its seconds and metrics, as
ours2x_*; each PEER.npz (peer.py's) as <its file name without .npz>_*.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def keep(arrays) -> dict:
    return {key: value for key, value in arrays.items() if not key.startswith(("train_", "source_"))}


def main(out: str, job: str, second: str, *peers: str) -> None:
    packed = keep(dict(np.load(job)))
    packed.update({"ours2x_" + key: value for key, value in keep(dict(np.load(second))).items()
                   if key.startswith(("written_", "seconds", "metrics"))})
    for peer in peers:
        packed.update({Path(peer).stem + "_" + key: value for key, value in np.load(peer).items()})
    np.savez_compressed(out, **packed)


if __name__ == "__main__":
    main(*sys.argv[1:])
