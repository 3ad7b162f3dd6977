"""G and the estimate it yields.

1. One step's accumulators equal, element by element, what the definition gives when it
   is evaluated in numpy from that step's own render targets (color, ID, UV).
2. Gradient checks as SPEC.md defines them: the un-normalised per-pixel estimate
   sum_p Delta_p delta_i / (2 eps_i), averaged over K steps with theta held still
   (learning rate 0), against a central finite difference of the same summed loss,
   obtained from ``Optimizer.loss_pair``.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Mesh, Settings
from optimizer.gpu import read_texture
from optimizer.hashing import perturbation_signs
from optimizer.surface.mesh import geom_node, grid
from optimizer.experiments.accuracy import geometry_scene
from optimizer.sge import perturbation_seed
from sge_testlib import accumulator_of, cosine, relative_error


def target_images(context, optimizer):
    images = {}
    for side, targets in (("plus", optimizer.plus_pass), ("minus", optimizer.minus_pass),
                          ("reference", optimizer.reference_pass)):
        planes = {"color": targets.color, "id": targets.sample, "uv": targets.planes["uv"]}
        for name, plane in planes.items():
            images[side, name] = read_texture(context, plane).astype(np.float64)
    return images


def pixel_deltas(images):
    """Delta_p = l(C+, T) - l(C-, T), L2 over RGB."""
    target = images["reference", "color"][..., :3]
    return (np.sum((images["plus", "color"][..., :3] - target) ** 2, axis=-1)
            - np.sum((images["minus", "color"][..., :3] - target) ** 2, axis=-1))


def triangle_ids(images, side):
    return images[side, "id"][..., 0].round().astype(int) - 1


def one_step_without_coverage_flips(context, optimizer, view):
    """One step, then (its target images, Delta_p, the triangle per pixel), checking that
    both renders cover the same pixels with the same triangles (geometry held still)."""
    optimizer.step(view)
    optimizer.sync()
    images = target_images(context, optimizer)
    ids = triangle_ids(images, "plus")
    assert np.array_equal(ids, triangle_ids(images, "minus"))
    return images, pixel_deltas(images), ids


@pytest.mark.parametrize("steps", [1, 2])  # the accumulator halves alternate
def test_accumulator_is_the_sum_over_contributing_pixels(context, make_optimizer, steps):
    """Uniform weights, positions and colors perturbed together. Geometry: every pixel of
    the union of the two renders' contributors, each vertex counted once (SPEC.md).
    Attributes: the pixels both renders give to the same triangle (gradient_vertices.comp:
    a pixel whose coverage flips carries the geometry's Delta).

    The targets are read after the last step only (see test_loss.py: reading a target
    back disturbs the next step)."""
    rng = np.random.default_rng(5)
    positions, triangles = grid(4, -0.7, 0.6)
    colors = rng.uniform(0.2, 0.8, (len(positions), 3)).astype(np.float32)
    target_positions = positions + np.float32(0.1) * rng.standard_normal(positions.shape).astype(np.float32)
    target_colors = rng.uniform(0.0, 1.0, (len(positions), 3)).astype(np.float32)
    # Geometry eps of about a pixel: silhouette pixels are covered in one render only.
    mesh = Mesh(positions, triangles, colors, position_settings=Settings(0.06, 0.01),
                color_settings=Settings(0.05, 0.01), barycentric_weights=False)
    reference = geom_node("reference", target_positions, triangles, target_colors)
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=11)
    view = np.eye(4)
    view[:2, :2] = [[0.9, -0.3], [0.3, 0.9]]  # a rotation and scale in the image plane

    vertex_count = len(positions)
    for _ in range(steps):
        optimizer.step(view)
    optimizer.sync()
    images = target_images(context, optimizer)
    delta = pixel_deltas(images)
    ids_plus, ids_minus = triangle_ids(images, "plus"), triangle_ids(images, "minus")
    geometry = np.zeros((2, vertex_count))    # sums, counts
    attributes = np.zeros((2, vertex_count))
    for row, col in np.argwhere((ids_plus >= 0) | (ids_minus >= 0)):
        named = {int(v) for ids in (ids_plus, ids_minus) if ids[row, col] >= 0 for v in triangles[ids[row, col]]}
        for vertex in named:
            geometry[:, vertex] += (delta[row, col], 1.0)
        if ids_plus[row, col] == ids_minus[row, col]:
            for vertex in triangles[ids_plus[row, col]]:
                attributes[:, vertex] += (delta[row, col], 1.0)
    flipped = np.count_nonzero(ids_plus != ids_minus)
    assert flipped > 10, "the scene should have pixels whose coverage differs between the renders"

    parity = (optimizer.step_index - 1) % 2
    for parameter_set, expected in ((mesh.positions, geometry), (mesh.colors, attributes)):
        sums, counts = accumulator_of(context, parameter_set, parity)
        assert np.all(expected[1] > 0)
        np.testing.assert_array_equal(counts, expected[1], err_msg=parameter_set.name)
        # Fixed point at 2^-24 per term, a few hundred terms per vertex.
        np.testing.assert_allclose(sums, expected[0], rtol=1e-5, atol=1e-4, err_msg=parameter_set.name)


@pytest.mark.parametrize("weight_power", [1.0, 2.0])
def test_barycentric_weights(context, make_optimizer, identity_view, weight_power):
    """Positions frozen, colors perturbed, barycentric weights: a pixel counts for each
    corner of its triangle with the corner's barycentric coordinate (raised to
    ``weight_power`` in the geometry channel)."""
    rng = np.random.default_rng(6)
    positions, triangles = grid(3, -0.8, 0.7)
    colors = rng.uniform(0.2, 0.8, (len(positions), 3)).astype(np.float32)
    target_colors = rng.uniform(0.0, 1.0, (len(positions), 3)).astype(np.float32)
    mesh = Mesh(positions, triangles, colors, color_settings=Settings(0.05, 0.0),
                barycentric_weights=True, weight_power=weight_power)
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles, target_colors), (32, 32), seed=2)
    images, delta, ids = one_step_without_coverage_flips(context, optimizer, identity_view)
    expected = {power: np.zeros((2, len(positions))) for power in (1.0, weight_power)}
    for row, col in np.argwhere(ids >= 0):
        corners = triangles[ids[row, col]]
        # The barycentrics G reads: the UV target's (test_targets checks them against the
        # analytic ones; a GPU's interpolation differs from those by ~1e-4).
        b0, b1 = images["plus", "uv"][row, col, 2:4]
        b = np.clip([b0, b1, 1.0 - b0 - b1], 0.0, 1.0)
        for power, sums in expected.items():
            for vertex, weight in zip(corners, b ** power):
                sums[:, vertex] += (weight * delta[row, col], weight)

    for parameter_set, power in ((mesh.colors, 1.0), (mesh.positions, weight_power)):
        sums, counts = accumulator_of(context, parameter_set, 0)
        np.testing.assert_allclose(counts, expected[power][1], rtol=1e-4, atol=1e-3, err_msg=parameter_set.name)
        np.testing.assert_allclose(sums, expected[power][0], rtol=1e-4, atol=1e-4, err_msg=parameter_set.name)


def sge_estimate(context, optimizer, parameter_set, view, steps):
    """The mean over ``steps`` steps of delta_i * sum_p Delta_p / (2 eps) (uniform weights)."""
    eps = parameter_set.settings.epsilon
    total = np.zeros(parameter_set.count)
    for _ in range(steps):
        optimizer.step(view)
        optimizer.sync()
        step = optimizer.step_index - 1
        sums, _ = accumulator_of(context, parameter_set, step % 2)
        signs = perturbation_signs(parameter_set.count, parameter_set.set_id, perturbation_seed(optimizer.seed, step))
        total += signs * np.repeat(sums, parameter_set.shape[1]) / (2.0 * eps)
    return total / steps


def finite_difference(context, optimizer, parameter_set, view, h):
    """Central differences (L(theta + h e_i) - L(theta - h e_i)) / 2h of the summed loss."""
    theta = parameter_set.values(context).ravel().astype(np.float64)
    gradient = np.zeros(parameter_set.count)
    for i in range(parameter_set.count):
        step = np.zeros_like(theta)
        step[i] = h
        loss_plus, loss_minus = optimizer.loss_pair(view, {parameter_set: theta + step},
                                                    {parameter_set: theta - step})
        gradient[i] = (loss_plus - loss_minus) / (2.0 * h)
    return gradient


def test_color_gradient_matches_finite_difference(context, make_optimizer, identity_view):
    """Vertex colors seen head-on, positions frozen: the summed L2 loss is quadratic in the
    colors, so a central difference is exact at any step (h = 0.02 here, eps = 0.02).
    Measured over 6 offsets of the set ids: cosine 0.990-0.994, relative error
    0.11-0.16 at K = 300."""
    rng = np.random.default_rng(1)
    positions, triangles = grid(3, -0.7, 0.7)
    colors = rng.uniform(0.2, 0.8, (len(positions), 3)).astype(np.float32)
    target_colors = rng.uniform(0.0, 1.0, (len(positions), 3)).astype(np.float32)
    mesh = Mesh(positions, triangles, colors, color_settings=Settings(0.02, 0.0), barycentric_weights=False)
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles, target_colors), (32, 32), seed=3)

    estimate = sge_estimate(context, optimizer, mesh.colors, identity_view, steps=300)
    np.testing.assert_array_equal(mesh.colors.values(context).ravel(), colors.ravel())  # lr 0: theta still
    truth = finite_difference(context, optimizer, mesh.colors, identity_view, h=0.02)

    assert np.linalg.norm(truth) > 10.0  # a real gradient, not noise
    assert cosine(estimate, truth) >= 0.95
    assert relative_error(estimate, truth) <= 0.3


def test_geometry_gradient_matches_finite_difference(context, identity_view):
    """Vertex positions of a grid that covers the whole image (its border lies outside
    the view, so no silhouette is in sight): the loss is continuous in the positions,
    smooth at the scale of a pixel. eps = h = 1/48 (half a pixel at R = 48).
    Measured over 6 offsets of the set ids: cosine 0.991-0.997, relative error
    0.08-0.14 at K = 400."""
    optimizer, positions, eps = geometry_scene(context)  # the scene docs/METHOD.md measures
    try:
        estimate = sge_estimate(context, optimizer, positions, identity_view, steps=400)
        truth = finite_difference(context, optimizer, positions, identity_view, h=eps)
    finally:
        optimizer.release()

    assert np.all(truth[2::3] == 0.0)  # z does not change the image under this view
    assert np.linalg.norm(truth) > 5.0
    assert cosine(estimate, truth) >= 0.95
    assert relative_error(estimate, truth) <= 0.3
