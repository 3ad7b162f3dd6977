"""Several SGE steps per frame (``Optimizer(steps_per_frame=K)``): the same results as one
step per frame, lights carried from step to step as they are with one, and the passes
that ``show`` and ``loss_pair`` run alone between batches."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import SgeError
from optimizer.surface.mesh import Mesh, geom_node, grid
from optimizer.parameters import Settings
from optimizer.view import perspective, random_rotation, translation


def lit_quad():
    positions, triangles = grid(3, -0.8, 0.8)
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.2, 0.9, (len(positions), 3)).astype(np.float32)
    normals = np.tile([0.0, 0.0, 1.0], (len(positions), 1)).astype(np.float32)
    reference = geom_node("reference", positions, triangles, truth, normals=normals)

    def mesh():
        return Mesh(positions, triangles, np.full_like(truth, 0.5), normals=normals,
                    color_settings=Settings(0.03, 0.03, (0.0, 1.0)))
    return mesh, reference


def views(count: int):
    """Random views of the (two-sided) quad; every third without a light (it keeps the
    previous step's)."""
    rng = np.random.default_rng(9)
    result = []
    for k in range(count):
        view = perspective(0.4) @ translation(0, 0, -2.5) @ random_rotation(rng)
        light = None if k % 3 == 2 else (rng.uniform(-0.5, 0.5, 3) + [0.0, 0.0, 1.0], 0.3)
        result.append((view, light))
    return result


def run(make_optimizer, steps_per_frame: int, batches):
    mesh, reference = lit_quad()
    asset = mesh()
    optimizer = make_optimizer(asset, reference, (24, 24), seed=4, steps_per_frame=steps_per_frame)
    for batch in batches:
        optimizer.steps(batch)
    optimizer.sync()
    losses = optimizer.losses()
    optimizer.finish()
    # Read now: an optimizer's passes run in every frame the engine renders, so the next
    # run's frames would step this one's theta too.
    colors = asset.colors.values(optimizer.context)
    optimizer.set_active(False)
    return optimizer, asset, losses, colors


def test_lit_steps_per_frame_match_single_steps(make_optimizer):
    stream = views(14)
    *_, single_losses, single_colors = run(make_optimizer, 1, [stream])
    # Uneven batches: a frame may run fewer steps than steps_per_frame.
    *_, losses, colors = run(make_optimizer, 4, [stream[:5], stream[5:7], stream[7:]])
    assert len(losses) == 14
    assert np.array_equal(losses, single_losses)
    assert np.array_equal(colors, single_colors)


def test_show_and_loss_pair_between_batches(make_optimizer):
    """``show`` and ``loss_pair`` run one-step frames in between frames of several steps."""
    stream = views(8)
    optimizer, asset, *_ = run(make_optimizer, 4, [stream[:4]])
    optimizer.set_active(True)
    view, light = stream[0]
    current, reference = optimizer.snapshot(view, light=light)
    assert current.shape == reference.shape == (24, 24, 4)
    theta = asset.colors.values(optimizer.context)
    plus, minus = optimizer.loss_pair(view, {asset.colors: theta}, {asset.colors: theta}, light=light)
    assert plus == minus > 0.0
    optimizer.steps(stream[4:])
    optimizer.sync()
    assert len(optimizer.losses()) == 8


def test_too_many_views_for_a_frame(make_optimizer):
    mesh, reference = lit_quad()
    optimizer = make_optimizer(mesh(), reference, (8, 8), steps_per_frame=2)
    with pytest.raises(SgeError, match="1 to 2 steps"):
        optimizer.begin_steps(views(3))
    with pytest.raises(SgeError, match="steps_per_frame"):
        make_optimizer(mesh(), reference, (8, 8), steps_per_frame=0)


def moving_quad_run(make_optimizer, context, clear_every_step: bool):
    """A quad whose vertices and colors are optimised under changing views: its coverage
    moves from step to step, so uncleared targets hold stale pixels where it was."""
    positions, triangles = grid(3, -0.7, 0.7)
    rng = np.random.default_rng(2)
    target = positions + np.float32(0.1) * rng.standard_normal(positions.shape).astype(np.float32)
    colors = rng.uniform(0.0, 1.0, (len(positions), 3)).astype(np.float32)
    mesh = Mesh(positions, triangles, np.full_like(colors, 0.5), position_settings=Settings(0.03, 0.02),
                color_settings=Settings(0.03, 0.02, (0.0, 1.0)))
    optimizer = make_optimizer(mesh, geom_node("reference", target, triangles, colors), (24, 24), seed=3,
                               supersampling=2, background=(0.2, 0.3, 0.4, 1.0), clear_every_step=clear_every_step)
    sequence = views(12)
    optimizer.steps([view for view, _ in sequence[:6]])
    optimizer.show(sequence[0][0])  # a cleared frame between uncleared ones
    optimizer.steps([view for view, _ in sequence[6:]])
    optimizer.sync()
    losses = optimizer.losses()
    optimizer.finish()
    return losses, mesh.positions.values(context), mesh.colors.values(context)


def test_uncleared_targets_give_the_same_run_bit_for_bit(make_optimizer, context):
    cleared = moving_quad_run(make_optimizer, context, True)
    stale = moving_quad_run(make_optimizer, context, False)
    assert np.all(cleared[0] > 0)
    for a, b in zip(cleared, stale):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("steps_per_frame", [1, 4])
def test_finish_applies_the_last_update_once(make_optimizer, steps_per_frame):
    """``finish`` applies the pending update, and the frames after it (a ``show``, the next
    step) do not apply it again. (Dispatching P outside a frame once left its uniforms
    bound, and the next frame's P repeated the update.)"""
    mesh, reference = lit_quad()
    asset = mesh()
    optimizer = make_optimizer(asset, reference, (24, 24), seed=4, steps_per_frame=steps_per_frame)
    batch = views(8)
    optimizer.steps(batch)
    optimizer.sync()
    before = asset.colors.values(optimizer.context)
    optimizer.finish()
    finished = asset.colors.values(optimizer.context)
    assert not np.array_equal(finished, before)  # the update is applied
    optimizer.show(batch[0][0], light=batch[0][1])
    assert np.array_equal(asset.colors.values(optimizer.context), finished)  # and only once
    optimizer.set_active(False)
