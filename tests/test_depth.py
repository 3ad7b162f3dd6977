"""The depth term of the per-pixel loss (``Optimizer(depth_weight=...)``, the LOD job's
pull of its surface onto the source's). The scene gives the colors no say: one flat
color on a grid that runs past every edge of the view, so no silhouette is in sight and
C+ = C- at every pixel. The depth term alone must then bring the grid's vertices to the
reference's depth, and without it the very same run must not move them at all."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Mesh, Settings
from optimizer.errors import SgeError
from optimizer.gpu import read_pages
from optimizer.surface.mesh import geom_node, grid
from optimizer.view import perspective, translation

VIEW = perspective(0.5) @ translation(0.0, 0.0, -3.0)  # sees |x|, |y| <= 1.5 at z = 0


def run(make_optimizer, context, depth_weight: float, steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(|z| of the vertices in view before, after) for a grid whose vertices start up to
    0.25 off the reference's z = 0."""
    positions, triangles = grid(7, -3.0, 3.0)  # spacing 1: the border lies far outside the view
    start = positions.copy()
    start[:, 2] = np.random.default_rng(5).uniform(-0.25, 0.25, len(positions))
    colors = np.full((len(positions), 3), 0.6, np.float32)
    mesh = Mesh(start, triangles, colors, position_settings=Settings(0.01, 0.01))
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles, colors), (32, 32), seed=2,
                               depth_weight=depth_weight, depth_limit=1.0)
    for _ in range(steps):
        optimizer.step(VIEW)
    optimizer.sync()
    optimizer.finish()
    in_view = np.all(np.abs(positions[:, :2]) <= 1.0, axis=1)  # the 9 vertices well inside the view
    return np.abs(start[in_view, 2]), np.abs(mesh.positions.values(context)[in_view, 2])


def test_depth_term_pulls_the_surface_onto_the_reference(make_optimizer, context):
    before, after = run(make_optimizer, context, depth_weight=16.0)
    # Measured: mean |z| 0.110 -> 0.00004.
    assert before.mean() > 0.08
    assert after.mean() < 0.05 * before.mean()


def test_without_the_depth_term_flat_colors_give_no_gradient(make_optimizer, context):
    before, after = run(make_optimizer, context, depth_weight=0.0, steps=20)
    assert np.array_equal(before, after)


@pytest.mark.parametrize("weight, limit", [(-1.0, 0.1), (float("nan"), 0.1), (1.0, 0.0)])
def test_bad_depth_settings_are_refused(make_optimizer, weight, limit):
    positions, triangles = grid(2, -1.0, 1.0)
    mesh = Mesh(positions, triangles, position_settings=Settings(0.01, 0.01))
    with pytest.raises(SgeError, match="depth_weight"):
        make_optimizer(mesh, geom_node("reference", positions, triangles), (8, 8), depth_weight=weight,
                       depth_limit=limit)


def test_depth_contrast_weighs_each_sample_by_the_references_contrast(make_optimizer, context):
    """The depth term weighted by the reference's local contrast (``depth_contrast``):
    the loss the GPU records for one render pair equals the weighted sum computed here
    from the same renders, and differs materially from the uniform term's."""
    positions, triangles = grid(7, -3.0, 3.0)
    rng = np.random.default_rng(3)
    colors = rng.uniform(0.0, 1.0, (len(positions), 3)).astype(np.float32)  # contrast varying over the view
    colors[positions[:, 0] < 0] = 0.5  # and none on the left half
    lod = positions.copy()
    lod[:, 2] = 0.05 + 0.1 * rng.uniform(0.0, 1.0, len(positions))
    weight, contrast, cap, limit, size, supersampling = 4.0, 30000.0, 2.0, 1.0, 24, 2

    def recorded(depth_contrast: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        mesh = Mesh(lod, triangles, colors, position_settings=Settings(0.01, 0.01))
        optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles, colors), (size, size),
                                   supersampling=supersampling, depth_weight=weight, depth_limit=limit,
                                   color_weight=0.0, depth_contrast=depth_contrast, depth_contrast_cap=cap)
        loss, _ = optimizer.loss_pair(VIEW, {}, {})
        # Texture rows (y up) as the shader indexes them.
        samples, colours = (read_pages(context, texture)[:, ::-1] for texture in (optimizer.passes.sample,
                                                                                  optimizer.passes.color))
        ours, theirs = samples[optimizer.plus_pass.sample.page], samples[optimizer.reference_pass.sample.page]
        return loss, ours, theirs, colours[optimizer.reference_pass.color.page]

    loss, ours, theirs, target = recorded(contrast)
    drawn = theirs[..., 0] > 0.5
    covered = (ours[..., 0] > 0.5) & drawn
    squared = np.zeros(drawn.shape)
    per_unit = drawn.shape[1] / 256.0
    for here, there in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))),   # the next one in x
                        ((slice(0, -1), slice(None)), (slice(1, None), slice(None)))):  # and in y
        step = (target[there][..., :3] - target[here][..., :3]) * per_unit
        squared[here] += np.where(drawn[there], np.sum(step ** 2, axis=-1), 0.0)
    weights = 1.0 + np.minimum(contrast * squared, cap)
    depth = np.minimum(np.abs(ours[..., 2] - theirs[..., 2]), limit) ** 2
    expected = weight / supersampling ** 2 * np.sum(np.where(covered, weights * depth, 0.0))
    uniform, *_ = recorded(0.0)
    assert loss == pytest.approx(expected, rel=1e-3)
    assert uniform == pytest.approx(weight / supersampling ** 2 * np.sum(np.where(covered, depth, 0.0)), rel=1e-3)
    assert loss > 1.5 * uniform  # the weights matter (measured: 2.41 times)


@pytest.mark.parametrize("name", ["color_weight", "depth_contrast", "depth_contrast_cap"])
def test_bad_loss_weights_are_refused(make_optimizer, name):
    positions, triangles = grid(2, -1.0, 1.0)
    mesh = Mesh(positions, triangles, position_settings=Settings(0.01, 0.01))
    for value in (-1.0, float("nan")):
        with pytest.raises(SgeError, match=name):
            make_optimizer(mesh, geom_node("reference", positions, triangles), (8, 8), depth_weight=1.0,
                           **{name: value})
