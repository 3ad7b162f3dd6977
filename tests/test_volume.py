"""The volume kind (optimizer/volume/): G names the 8 trilinear voxels of a sample with
their weights, its estimate agrees with finite differences on density and colour voxels
(SPEC's check), a small fit converges, and the scenario's truth and cameras are SPEC's."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Settings
from optimizer.volume.kind import DELTA_SCALE, GridReference, VolumeGrid, jitter_input
from optimizer.volume.scenario import camera, truth_parameters, upsample, voxel_centres
from sge_testlib import cosine, relative_error
from test_gradient import finite_difference, sge_estimate

VIEW = camera(np.random.default_rng(3))


def random_grid(rng, size, low=0.5, high=4.0):
    return (rng.uniform(low, high, (size,) * 3).astype(np.float32),
            rng.uniform(0.1, 0.9, (size,) * 3 + (3,)).astype(np.float32))


def test_truth_and_cameras_are_specs():
    centres, scales, amplitudes = truth_parameters()
    rng = np.random.default_rng(2024)
    np.testing.assert_array_equal(centres, rng.uniform(-0.5, 0.5, (8, 3)))
    np.testing.assert_array_equal(scales, rng.uniform(0.1, 0.3, 8))
    np.testing.assert_array_equal(amplitudes, rng.uniform(5, 25, 8))
    # The camera: eye at distance 4 along d, looking at the origin (which projects to the
    # image centre), its up axis the orthogonalised second draw.
    rng = np.random.default_rng(0)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    up = rng.normal(size=3)
    up = up - up.dot(d) * d
    up /= np.linalg.norm(up)
    matrix = camera(np.random.default_rng(0))
    origin = matrix @ [0, 0, 0, 1]
    np.testing.assert_allclose(origin[:2] / origin[3], 0.0, atol=1e-12)
    above = matrix @ [*(0.1 * up), 1]
    assert above[1] > 0 and abs(above[0] / above[3]) < 1e-12
    np.testing.assert_allclose(np.linalg.solve(matrix, [0, 0, 1, 0])[:3] / np.linalg.solve(matrix, [0, 0, 1, 0])[3],
                               4 * d, atol=1e-9)
    # Pixel centres at ((i + 1/2) / R * 2 - 1) * 0.4 along right and up: a point on the
    # ray of such a centre projects to it.
    right = np.cross(-d, up)
    point = 4 * d + 2.0 * (-d + 0.3 * right - 0.2 * up)
    clip = matrix @ [*point, 1]
    np.testing.assert_allclose(clip[:2] / clip[3], [0.3 / 0.4, -0.2 / 0.4], atol=1e-9)


def test_upsampling_keeps_a_linear_field():
    """Trilinear upsampling at the finer voxel centres reproduces a linear field inside."""
    centres = voxel_centres(4)
    field = (centres @ [1.0, -2.0, 0.5])[..., None]
    fine = upsample(field, 8)[..., 0]
    expected = voxel_centres(8) @ [1.0, -2.0, 0.5]
    inner = np.s_[1:-1, 1:-1, 1:-1]
    np.testing.assert_allclose(fine[inner], expected[inner], atol=1e-9)


def test_a_sample_names_its_8_trilinear_voxels(context, make_optimizer):
    """A ray straight down the z axis through one point: the voxels G names and their
    colour weights are those of trilinear interpolation at each sample, summed over the
    samples (compositing weights T_i alpha_i from a uniform density)."""
    size, sigma = 4, 2.0
    density = np.full((size,) * 3, sigma, np.float32)
    color = np.full((size,) * 3 + (3,), 0.5, np.float32)
    jitter = jitter_input(0.5)
    grid = VolumeGrid(density, color, Settings(0.5, 0.0), Settings(0.05, 0.0), jitter=jitter)
    reference = GridReference(density, np.zeros_like(color), jitter)
    resolution = 8
    # A camera on the +z axis looking down -z; the pixel (4, 4) centre ray is off axis by
    # half a pixel.
    optimizer = make_optimizer(grid, reference, (resolution, resolution))
    matrix = _look_down_z(4.0)
    optimizer.step(matrix)
    optimizer.sync()
    from optimizer.sge import read_accumulator
    _, color_weights = read_accumulator(context, grid.color.domain, 0)
    expected = _expected_color_weights(matrix, resolution, size, sigma)
    np.testing.assert_allclose(color_weights, expected, rtol=1e-4, atol=1e-6)


def _look_down_z(distance):
    from optimizer.view import perspective
    view = np.eye(4)
    view[2, 3] = -distance
    return perspective(0.4) @ view


def _expected_color_weights(matrix, resolution, size, sigma):
    """Per voxel: sum over covered pixels and their samples of T_i alpha_i x trilinear
    weight, marched in numpy as march.glsl places the samples (jitter 1/2)."""
    step = 1.0 / 64.0
    eye = np.array([0.0, 0.0, 4.0])
    inverse = np.linalg.inv(matrix)
    weights = np.zeros(size ** 3)
    alpha = 1.0 - np.exp(-sigma * step)
    for py in range(resolution):
        for px in range(resolution):
            ndc = (np.array([px, py]) + 0.5) / resolution * 2 - 1
            far = inverse @ [*ndc, 1, 1]
            direction = far[:3] / far[3] - eye
            direction /= np.linalg.norm(direction)
            with np.errstate(divide="ignore"):
                t0, t1 = (-1 - eye) / direction, (1 - eye) / direction
            enter = max(np.minimum(t0, t1).max(), 0.0)
            leave = np.maximum(t0, t1).min()
            if leave <= enter:
                continue
            transmittance = 1.0
            t = enter + 0.5 * step
            cell, sums = None, np.zeros(8)
            while t < leave:
                x = eye + t * direction
                g = (x * 0.5 + 0.5) * size - 0.5
                base = np.floor(g).astype(int)
                f = g - base
                if cell is not None and tuple(base) != cell:
                    _flush(weights, cell, sums, size)
                cell = tuple(base)
                for k in range(8):
                    corner = np.array([k & 1, (k >> 1) & 1, k >> 2])
                    sums[k] += transmittance * alpha * np.prod(np.where(corner == 1, f, 1 - f))
                transmittance *= 1 - alpha
                t += step
            _flush(weights, cell, sums, size)
    return weights


def _flush(weights, cell, sums, size):
    """G's flush of a cell's 8 corner sums, each left out below 1e-4 (gradient.comp)."""
    for k in range(8):
        v = np.clip(np.array(cell) + [k & 1, (k >> 1) & 1, k >> 2], 0, size - 1)
        if sums[k] > 1e-4:
            weights[v[0] + size * (v[1] + size * v[2])] += sums[k]
        sums[k] = 0.0


@pytest.mark.parametrize("part", ["density", "color"])
def test_volume_gradient_matches_finite_difference(context, make_optimizer, part):
    """A 4^3 grid against another, one view, jitter 1/2 (the loss is then a smooth function
    of the grid): the mean of K = 300 un-normalised SGE estimates (unit weights, every voxel
    a pixel's samples name counts once) against central differences of the summed loss."""
    rng = np.random.default_rng(11)
    density, color = random_grid(rng, 4)
    target_density, target_color = random_grid(rng, 4)
    jitter = jitter_input(0.5)
    settings = {"density": (Settings(0.3, 0.0), None), "color": (None, Settings(0.03, 0.0))}[part]
    grid = VolumeGrid(density, color, *settings, unit_weights=True, jitter=jitter)
    optimizer = make_optimizer(grid, GridReference(target_density, target_color, jitter), (24, 24), seed=4)
    parameter_set = grid.density if part == "density" else grid.color
    estimate = sge_estimate(context, optimizer, parameter_set, VIEW, steps=300) / DELTA_SCALE
    h = {"density": 0.05, "color": 0.01}[part]
    truth = finite_difference(context, optimizer, parameter_set, VIEW, h=h)
    assert np.linalg.norm(truth) > 0.5  # a real gradient
    assert cosine(estimate, truth) >= 0.9, (cosine(estimate, truth), relative_error(estimate, truth))
    assert relative_error(estimate, truth) <= 0.45
