"""The perturbation signs delta_i, computed exactly as common.glsl does, for checks and
reports on the CPU (the GPU never stores them)."""

from __future__ import annotations

import numpy as np

_MASK = np.uint64(0xFFFFFFFF)


def pcg_hash(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.uint64) & _MASK
    state = (v * np.uint64(747796405) + np.uint64(2891336453)) & _MASK
    word = (((state >> ((state >> np.uint64(28)) + np.uint64(4))) ^ state) * np.uint64(277803737)) & _MASK
    return ((word >> np.uint64(22)) ^ word) & _MASK


def perturbation_signs(count: int, set_id: int, seed: int) -> np.ndarray:
    """delta_i for parameters 0..count-1 of a set at a step seed: +1 or -1 (float32)."""
    inner = pcg_hash(np.uint64(seed) ^ pcg_hash(np.uint64(set_id)))
    h = pcg_hash(np.arange(count, dtype=np.uint64) ^ inner)
    return np.where(h & np.uint64(0x80000000), 1.0, -1.0).astype(np.float32)
