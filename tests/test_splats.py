"""Gaussian splats (optimizer/splats): the K-buffer, the gradient per parameter group
against finite differences, a small fit of SPEC's scenario, the .ply round trip."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.parameters import Settings
from optimizer.splats.kind import K_BUFFER, SH_C0, Splats
from optimizer.splats.scenario import look_at
from optimizer.surface.mesh import ModelReference, geom_node, grid
from optimizer.view import perspective

from sge_testlib import cosine, relative_error
from test_gradient import finite_difference, sge_estimate

SIZE = 32


def camera() -> np.ndarray:
    """Looking down -Z from z = 0: a splat at depth d is drawn at distance d."""
    return perspective(0.4, near=0.5, far=10.0) @ look_at(np.zeros(3), np.array([0.0, 0.0, -1.0]), up=(0, 1, 0))


def splat_values(means, log_scale, opacity_logits, colors) -> dict:
    n = len(means)
    rotations = np.zeros((n, 4), np.float32)
    rotations[:, 0] = 1.0
    return {"means": np.asarray(means, np.float32),
            "log_scales": np.full((n, 3), log_scale, np.float32) if np.isscalar(log_scale) else np.asarray(log_scale, np.float32),
            "rotations": rotations,
            "opacities": np.asarray(opacity_logits, np.float32).reshape(n, 1),
            "colors": ((np.asarray(colors, np.float32) - 0.5) / SH_C0).astype(np.float32)}


def quad_reference(color) -> ModelReference:
    positions, triangles = grid(2, -3.0, 3.0, z=-6.0)
    colors = np.tile(np.asarray(color, np.float32), (len(positions), 1))
    return ModelReference(geom_node("backdrop", positions, triangles, colors), lit=False)


def all_settings(epsilon=None) -> dict:
    return {name: Settings(0.02 if epsilon is None else epsilon, 0.0)
            for name in ("means", "log_scales", "rotations", "opacities", "colors")}


def test_k_buffer_holds_the_nearest_contributors_by_weight(context, make_optimizer):
    """12 splats stacked on the image's centre at depths 2.0, 2.1, ... with alpha 0.3 at
    their centres (weights alpha (1 - alpha)^k fall with depth), and one in front of all
    of them whose alpha (1/300) is below 1/255: the centre pixel's K-buffer holds the 8
    nearest visible splats, which are those of the 8 largest weights, in depth order; the
    blended colour is the forward model's over all 12."""
    depths = np.array([1.9] + [2.0 + 0.1 * k for k in range(12)])
    means = np.stack([np.zeros_like(depths), np.zeros_like(depths), -depths], axis=1)
    alphas = np.array([1.0 / 300.0] + [0.3] * 12)
    order = np.random.default_rng(0).permutation(len(means))  # stored out of depth order
    rng = np.random.default_rng(1)
    colors = rng.uniform(0.1, 0.9, (len(means), 3))
    values = splat_values(means[order], np.log(0.05), np.log(alphas / (1 - alphas))[order], colors[order])
    splats = Splats(values, (SIZE, SIZE), all_settings())
    optimizer = make_optimizer(splats, quad_reference((0.2, 0.4, 0.6)), (SIZE, SIZE), background=(0, 0, 0, 0))
    result, _ = optimizer.snapshot(camera())
    from optimizer.gpu import read_buffer
    entries = read_buffer(context, splats.k_buffer).reshape(2, K_BUFFER, SIZE, SIZE)
    ranks = read_buffer(context, splats.order)
    # Pixel centre (15.5, 15.5) is 0.5 px from the image centre; rows of the buffer run bottom up.
    centre = entries[0, :, SIZE // 2 - 1, SIZE // 2 - 1]
    drawn = order.tolist()
    named = [drawn[ranks[r]] for r in centre]  # original splat indices, front to back
    # Weights alpha_k T_k at that pixel, front to back (numpy forward model).
    pixel_offset = np.array([0.5, 0.5])
    sigma2 = (0.05 * (SIZE / 2) / (0.4 * depths)) ** 2 + 0.3  # px^2 per axis
    gauss = np.exp(-0.5 * (pixel_offset ** 2).sum() / sigma2)
    alpha_at = np.minimum(0.99, alphas * gauss)
    alpha_at[alpha_at < 1 / 255] = 0.0
    transmittance = np.concatenate([[1.0], np.cumprod(1.0 - alpha_at)[:-1]])
    weights = alpha_at * transmittance
    largest = [int(i) for i in np.argsort(-weights, kind="stable")[:K_BUFFER]]
    assert named == sorted(largest, key=lambda i: depths[i])
    assert 0 not in named  # the faint front splat is no contributor
    expected = (weights[:, None] * colors).sum(axis=0)
    np.testing.assert_allclose(result[SIZE // 2 - 1, SIZE // 2 - 1, :3][::1], expected, atol=2e-3)
    assert np.all(entries[1] == entries[0])  # theta- = theta+ here
    # G's weights: show() ran G with Delta = 0, so the coming step's accumulator half
    # counts n = sum over pixels and both sides of w/2 = alpha_k T_k over each pixel's K
    # nearest: the same from the numpy forward model at every pixel centre.
    from optimizer.sge import read_accumulator
    _, counts = read_accumulator(context, splats.domain, optimizer.step_index % 2)
    xs = np.arange(SIZE) + 0.5 - SIZE / 2  # pixel centres relative to the image centre
    offsets2 = xs[None, :, None] ** 2 + xs[:, None, None] ** 2   # (y, x, 1)
    half = np.ceil(3.0 * np.sqrt(sigma2))                        # the 3-sigma square
    inside = (np.abs(xs)[None, :, None] <= half) & (np.abs(xs)[:, None, None] <= half)
    alpha_px = np.where(inside, np.minimum(0.99, alphas * np.exp(-0.5 * offsets2 / sigma2)), 0.0)
    alpha_px[alpha_px < 1 / 255] = 0.0
    expected_n = np.zeros(len(means))
    front_to_back = np.argsort(depths)
    for y in range(SIZE):
        for x in range(SIZE):
            transmittance, kept = 1.0, 0
            for i in front_to_back:
                if alpha_px[y, x, i] == 0.0 or kept == K_BUFFER:
                    continue
                expected_n[i] += alpha_px[y, x, i] * transmittance
                transmittance *= 1.0 - alpha_px[y, x, i]
                kept += 1
    np.testing.assert_allclose(counts, expected_n[order], rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("group, names, epsilon", [
    ("appearance", ("colors", "opacities"), 0.05),
    ("geometry", ("means", "log_scales"), 0.01),
])
def test_gradient_matches_finite_difference_per_group(context, make_optimizer, group, names, epsilon):
    """Four overlapping splats (at most 4 deep: every contributor is in the K-buffer)
    over a grey backdrop they do not match, seen head-on; the set's sets perturbed alone
    (the others frozen), unit weights. The mean of K = 200 estimates against central
    differences of the summed loss (h = eps). Measured: colours cosine 0.953, relative
    error 0.30; opacities 0.991, 0.14; means 0.990, 0.14; log-scales 0.936, 0.35."""
    rng = np.random.default_rng(4)
    means = np.array([[-0.15, -0.1, -2.0], [0.15, -0.05, -2.1], [0.0, 0.15, -2.2], [0.05, 0.0, -2.3]])
    colors = rng.uniform(0.2, 0.8, (4, 3))
    values = splat_values(means, np.log(0.12), np.zeros(4), colors)
    settings = {name: Settings(epsilon, 0.0) if name in names else None
                for name in ("means", "log_scales", "rotations", "opacities", "colors")}
    splats = Splats(values, (SIZE, SIZE), settings, unit_weights=True)
    optimizer = make_optimizer(splats, quad_reference((0.5, 0.5, 0.5)), (SIZE, SIZE), seed=2,
                               background=(0, 0, 0, 0))
    view = camera()
    for name in names:
        parameter_set = splats.sets[name]
        estimate = sge_estimate(context, optimizer, parameter_set, view, steps=200)
        optimizer.show(view)  # the order of theta under this view, for loss_pair's frames
        truth = finite_difference(context, optimizer, parameter_set, view, h=epsilon)
        assert np.linalg.norm(truth) > 1.0, (group, name)
        assert cosine(estimate, truth) >= 0.9, (group, name, cosine(estimate, truth))
        assert relative_error(estimate, truth) <= 0.5, (group, name, relative_error(estimate, truth))


def test_depth_sort_orders_every_splat_front_to_back(context, make_optimizer):
    """3,000 splats at random depths (sorted in chunks in shared memory, then merged
    across them): the order after P is the numpy order of their eye depths, ties by index."""
    rng = np.random.default_rng(5)
    count = 3000
    means = np.stack([rng.uniform(-0.5, 0.5, count), rng.uniform(-0.5, 0.5, count), -rng.uniform(2, 4, count)], axis=1)
    means[10, 2] = means[11, 2]  # a tie
    values = splat_values(means, np.log(0.01), np.zeros(count), np.full((count, 3), 0.5))
    splats = Splats(values, (SIZE, SIZE), all_settings())
    optimizer = make_optimizer(splats, quad_reference((0.2, 0.4, 0.6)), (SIZE, SIZE), background=(0, 0, 0, 0))
    optimizer.show(camera())
    from optimizer.gpu import read_buffer
    order = read_buffer(context, splats.order)[:count]
    depth = (camera() @ np.concatenate([means, np.ones((count, 1))], axis=1).T)[3].astype(np.float32)
    expected = np.lexsort((np.arange(count), depth))
    assert np.array_equal(order, expected)
