"""The volume's sparse perturbation (VolumeGrid(sparse=k), core/perturb.comp's
PERTURBATION_SIGN hook): one step perturbs about 1/k of the voxels, G sums only those,
and P updates exactly those."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Settings
from optimizer.sge import read_accumulator
from optimizer.volume.kind import GridReference, VolumeGrid, jitter_input
from optimizer.volume.scenario import camera

SIZE = 8


def _one_step(make_optimizer, context, sparse, block):
    rng = np.random.default_rng(3)
    density = rng.uniform(0.5, 4.0, (SIZE,) * 3).astype(np.float32)
    color = rng.uniform(0.2, 0.8, (SIZE,) * 3 + (3,)).astype(np.float32)
    jitter = jitter_input(0.5)
    grid = VolumeGrid(density, color, Settings(0.3, 0.1), None, jitter=jitter, sparse=sparse, block=block)
    reference = GridReference(density * 1.5, color, jitter)
    optimizer = make_optimizer(grid, reference, (24, 24), seed=5)
    view = camera(np.random.default_rng(1))
    optimizer.step(view)
    optimizer.sync()
    _, weights = read_accumulator(context, grid.domain, 0)
    optimizer.finish()  # P applies the step's update
    return weights > 0, grid.density.values(context).ravel() != density.ravel()


@pytest.mark.parametrize("block", [1, 2])
def test_a_sparse_step_perturbs_and_updates_a_quarter(context, make_optimizer, block):
    seen, updated_all = _one_step(make_optimizer, context, 1, block)
    summed, updated = _one_step(make_optimizer, context, 4, block)
    assert np.array_equal(updated_all, seen)  # every voxel the view sees is updated
    assert np.all(seen[summed])  # G sums a subset of the seen voxels ...
    fraction = summed.sum() / seen.sum()
    assert 0.12 <= fraction <= 0.4, fraction  # ... about a quarter (blocks of 8 voxels: coarser)
    assert np.array_equal(updated, summed)  # P updates exactly the voxels G summed
