"""The render targets G reads: the ID target names the triangle drawn at a pixel, the UV
target holds the interpolated uv and the barycentrics, the color target the interpolated
(perturbed) vertex colors. Scenes are drawn with the identity view, so world xy is NDC
and every expected value is analytic."""

from __future__ import annotations

import numpy as np

from optimizer import Mesh, Settings
from optimizer.gpu import read_buffer, read_texture
from optimizer.surface.mesh import geom_node
from sge_testlib import barycentrics, pixel_centres

# Four triangles; 2 overlaps 0 in front of it (z = -0.5), 3 overlaps 1 behind it (z = +0.5).
TRIANGLE_POSITIONS = np.array([
    [-0.9, -0.8, 0.0], [-0.05, -0.85, 0.0], [-0.7, 0.1, 0.0],     # 0: lower left
    [0.1, 0.05, 0.0], [0.85, 0.3, 0.0], [0.3, 0.9, 0.0],          # 1: upper right
    [-0.6, -0.6, -0.5], [-0.2, -0.3, -0.5], [-0.75, 0.6, -0.5],   # 2: in front of 0
    [0.5, -0.2, 0.5], [0.9, 0.8, 0.5], [0.15, 0.7, 0.5],          # 3: behind 1
], np.float32)
TRIANGLE_INDICES = np.arange(12, dtype=np.int32).reshape(4, 3)
# Not square, so a swapped width/height shows. Other sizes: see the padding test below.
RESOLUTION = (64, 32)


def _colors(count, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 0.9, (count, 3)).astype(np.float32)


def expected_ids(positions, triangles, width, height, margin=0.02):
    """float(triangle + 1) of the nearest triangle covering each pixel centre (0: none),
    and a mask of the pixels whose centre is not within ``margin`` (barycentric) of an
    edge of any triangle, where the rasterizer's tie rules cannot matter."""
    x, y = pixel_centres(width, height)
    ids = np.zeros((height, width))
    depth = np.full((height, width), np.inf)
    decisive = np.ones((height, width), bool)
    for k, corners in enumerate(triangles):
        b = barycentrics(positions[corners], x, y)
        inside = np.all(b > margin, axis=-1)
        decisive &= inside | np.any(b < -margin, axis=-1)
        z = b @ positions[corners][:, 2]
        nearer = inside & (z < depth)
        ids[nearer] = k + 1
        depth[nearer] = z[nearer]
    return ids, decisive


def _stepped_triangles(make_optimizer, view):
    """An optimizer over the overlapping test triangles, after one step from ``view``."""
    colors = _colors(len(TRIANGLE_POSITIONS))
    mesh = Mesh(TRIANGLE_POSITIONS, TRIANGLE_INDICES, colors, color_settings=Settings(0.02, 0.0))
    reference = geom_node("reference", TRIANGLE_POSITIONS, TRIANGLE_INDICES, colors)
    optimizer = make_optimizer(mesh, reference, RESOLUTION)
    optimizer.step(view)
    optimizer.sync()
    return optimizer


def test_id_target_names_the_visible_triangle(context, make_optimizer, identity_view):
    optimizer = _stepped_triangles(make_optimizer, identity_view)

    width, height = RESOLUTION
    expected, decisive = expected_ids(TRIANGLE_POSITIONS, TRIANGLE_INDICES, width, height)
    # The scene must exercise every triangle, the depth test both ways, and background.
    for value in range(5):
        assert np.count_nonzero(decisive & (expected == value)) >= 3, value

    for name, targets in (("theta+", optimizer.plus_pass), ("theta-", optimizer.minus_pass),
                          ("reference", optimizer.reference_pass)):
        ids = read_texture(context, targets.sample)
        assert ids.shape == (height, width, 4), name
        wrong = decisive & (ids[..., 0] != expected)
        assert not wrong.any(), (
            f"{name}: {np.count_nonzero(wrong)} pixels name the wrong triangle, e.g. pixel (row, col) "
            f"{tuple(np.argwhere(wrong)[0])}: got {ids[..., 0][wrong][0]}, expected {expected[wrong][0]}")


def pixel_at(x: float, y: float, width: int, height: int) -> tuple[int, int]:
    """(row, col) of the pixel holding NDC point (x, y), row 0 at the top."""
    return int((1.0 - y) / 2.0 * height), int((x + 1.0) / 2.0 * width)


def test_id_target_at_known_pixels(context, make_optimizer, identity_view):
    """The same at a few hand-picked points (checked by hand against the triangles)."""
    optimizer = _stepped_triangles(make_optimizer, identity_view)
    ids = read_texture(context, optimizer.plus_pass.sample)[..., 0]
    known = {
        (-0.575, -0.75): 1.0,   # triangle 0 only
        (0.525, 0.464): 2.0,    # triangle 1, in front of triangle 3
        (-0.575, 0.036): 3.0,   # triangle 2, in front of triangle 0
        (0.8, 0.6): 4.0,        # triangle 3 alone
        (-0.95, 0.95): 0.0,     # top-left corner: background
        (0.95, -0.95): 0.0,     # bottom-right corner: background
    }
    for (x, y), expected in known.items():
        assert ids[pixel_at(x, y, *RESOLUTION)] == expected, (x, y)


def test_targets_at_a_non_power_of_two_resolution(context, make_optimizer, identity_view):
    colors = _colors(len(TRIANGLE_POSITIONS))
    mesh = Mesh(TRIANGLE_POSITIONS, TRIANGLE_INDICES, colors, color_settings=Settings(0.02, 0.0))
    reference = geom_node("reference", TRIANGLE_POSITIONS, TRIANGLE_INDICES, colors)
    optimizer = make_optimizer(mesh, reference, (40, 28))
    optimizer.step(identity_view)
    optimizer.sync()
    ids = read_texture(context, optimizer.plus_pass.sample)
    assert ids.shape == (28, 40, 4)
    expected, decisive = expected_ids(TRIANGLE_POSITIONS, TRIANGLE_INDICES, 40, 28)
    assert np.array_equal(ids[..., 0][decisive], expected[decisive])


def _quad_scene():
    # A quad of two triangles, uvs an affine (not separable) function of position.
    positions = np.array([[-0.6, -0.5, 0.0], [0.7, -0.5, 0.0], [0.7, 0.8, 0.0], [-0.6, 0.8, 0.0]], np.float32)
    triangles = np.array([[0, 1, 2], [2, 3, 0]], np.int32)
    uvs = uv_of(positions[:, 0], positions[:, 1]).astype(np.float32)
    return positions, triangles, uvs


def _stepped_quad(make_optimizer, view, resolution, colors, reference_colors):
    """(optimizer, mesh) over the test quad with vertex colors to perturb, after one step."""
    positions, triangles, uvs = _quad_scene()
    mesh = Mesh(positions, triangles, colors, uvs, color_settings=Settings(0.05, 0.0))
    reference = geom_node("reference", positions, triangles, reference_colors, uvs)
    optimizer = make_optimizer(mesh, reference, resolution)
    optimizer.step(view)
    optimizer.sync()
    return optimizer, mesh


def uv_of(x, y):
    return np.stack([0.25 + 0.5 * x + 0.1 * y, 0.75 - 0.2 * x - 0.4 * y], axis=-1)


def test_uv_target_interpolates_uvs_and_barycentrics(context, make_optimizer, identity_view):
    positions, triangles, _ = _quad_scene()
    colors = _colors(4, seed=1)
    optimizer, _ = _stepped_quad(make_optimizer, identity_view, (64, 32), colors, colors)

    x, y = pixel_centres(64, 32)
    ids = read_texture(context, optimizer.plus_pass.sample)[..., 0]
    covered = ids > 0
    inside = (x > -0.6) & (x < 0.7) & (y > -0.5) & (y < 0.8)
    assert np.array_equal(covered, inside)  # no pixel centre lies on the quad's border
    assert 500 < covered.sum() < 64 * 32 - 300

    expected_uv = uv_of(x, y)
    for name, targets in (("theta+", optimizer.plus_pass), ("theta-", optimizer.minus_pass),
                          ("reference", optimizer.reference_pass)):
        uv = read_texture(context, targets.planes["uv"])
        np.testing.assert_allclose(uv[covered][:, :2], expected_uv[covered], atol=1e-4, err_msg=name)
        assert np.all(uv[~covered] == 0.0), f"{name}: the UV target is not cleared outside the mesh"

    # .zw: barycentrics of the first two corners of the triangle the ID target names.
    uv = read_texture(context, optimizer.plus_pass.planes["uv"])
    seen = set()
    for row, col in np.argwhere(covered):
        triangle = int(ids[row, col]) - 1
        seen.add(triangle)
        b = barycentrics(positions[triangles[triangle]], x[row, col], y[row, col])
        np.testing.assert_allclose(uv[row, col, 2:], b[:2], atol=1e-4, err_msg=f"pixel {(row, col)}")
    assert seen == {0, 1}
    zw = uv[covered][:, 2:]
    assert np.all(zw >= -1e-5) and np.all(zw.sum(axis=1) <= 1.0 + 1e-5)


def test_color_targets_show_the_perturbed_copies(context, make_optimizer, identity_view):
    """theta+ and theta- render the copies P wrote; the reference its own vertex colors."""
    positions, triangles, uvs = _quad_scene()
    colors = _colors(4, seed=2)
    target = _colors(4, seed=3)
    optimizer, mesh = _stepped_quad(make_optimizer, identity_view, (32, 16), colors, target)

    perturbed = read_buffer(context, mesh.colors.perturbed).reshape(2, 4, 3)
    assert not np.allclose(perturbed[0], perturbed[1])  # the colors are perturbed
    x, y = pixel_centres(32, 16)
    ids = read_texture(context, optimizer.plus_pass.sample)[..., 0]
    for name, targets, vertex_colors in (("theta+", optimizer.plus_pass, perturbed[0]),
                                         ("theta-", optimizer.minus_pass, perturbed[1]),
                                         ("reference", optimizer.reference_pass, target)):
        image = read_texture(context, targets.color)
        for row, col in np.argwhere(ids > 0)[::7]:
            corners = triangles[int(ids[row, col]) - 1]
            b = barycentrics(positions[corners], x[row, col], y[row, col])
            np.testing.assert_allclose(image[row, col, :3], b @ vertex_colors[corners], atol=1e-4,
                                       err_msg=f"{name} pixel {(row, col)}")
