"""Catmull-Clark stencils (optimizer/subdivision/stencils.py) against known results: a
cube's level-1 and level-2 vertices (hand-computed), an independent position-based
implementation, a regular quad grid's interior against the bicubic uniform B-spline
surface, the boundary rule, and the cage .obj that keeps quads. Host only (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import SgeError
from optimizer.subdivision.cage_obj import read_cage, write_cage
from optimizer.subdivision.stencils import refine, refine_once, split_vertices

# The cube with corners at +-0.5, six quads, outward winding.
CUBE = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
CUBE_FACES = np.array([[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]])


def test_cube_level_one_matches_hand_computed_points():
    """Level 1, by hand: a face point is the face's centre (0.5 on its axis); an edge
    point (a + b + f0 + f1) / 4 = (0.375, 0.375, 0); a corner (valence 3)
    (F + 2R + 0 P) / 3 with F = (1/6)(1,1,1), R = (1/3)(1,1,1): 5/18 on each axis."""
    refinement = refine(CUBE_FACES, 8, 1)
    points = refinement.stencils.apply(CUBE)
    assert points.shape == (8 + 6 + 12, 3) and len(refinement.quads) == 24
    np.testing.assert_allclose(np.abs(points[:8]), 5.0 / 18.0, atol=1e-12)
    np.testing.assert_allclose(np.sort(np.abs(points[8:14]), axis=1), [[0, 0, 0.5]] * 6, atol=1e-12)
    np.testing.assert_allclose(np.sort(np.abs(points[14:]), axis=1), [[0, 0.375, 0.375]] * 12, atol=1e-12)
    np.testing.assert_allclose(refinement.stencils.apply(np.ones((8, 1))), 1.0, atol=1e-12)  # affine


def test_cube_level_two_corner_matches_hand_computed_point():
    """Level 2, the corner by hand: around V = (5/18)(1,1,1) (valence 3) the new face
    points average to 17/72 per axis, the edge ends E = (3/8, 3/8, 0) ... to 1/4; the
    vertex point ((n - 2) V + mean E + mean F) / n = (20/72 + 18/72 + 17/72) / 3 = 55/216."""
    points = refine(CUBE_FACES, 8, 2).stencils.apply(CUBE)
    np.testing.assert_allclose(np.abs(points[:8]), 55.0 / 216.0, atol=1e-12)


def _reference_catmull_clark(positions, faces):
    """An independent, position-based Catmull-Clark level for closed meshes of any
    polygons (the textbook rules, one dict per element), ordered as stencils.py orders
    its new vertices: [vertex points | face points | edge points by (min, max) key]."""
    positions = [np.asarray(p, float) for p in positions]
    face_points = [np.mean([positions[v] for v in face], axis=0) for face in faces]
    edges: dict = {}
    for f, face in enumerate(faces):
        for i in range(len(face)):
            key = tuple(sorted((face[i], face[(i + 1) % len(face)])))
            edges.setdefault(key, []).append(f)
    edge_points = {key: (positions[key[0]] + positions[key[1]] + face_points[fs[0]] + face_points[fs[1]]) / 4.0
                   for key, fs in edges.items()}
    vertex_points = []
    for v, p in enumerate(positions):
        around = [f for f, face in enumerate(faces) if v in face]
        incident = [key for key in edges if v in key]
        n = len(incident)
        mean_face = np.mean([face_points[f] for f in around], axis=0)
        mean_mid = np.mean([(positions[a] + positions[b]) / 2.0 for a, b in incident], axis=0)
        vertex_points.append((mean_face + 2.0 * mean_mid + (n - 3.0) * p) / n)
    return np.array(vertex_points + face_points + [edge_points[key] for key in sorted(edges)])


def test_stencils_match_a_position_based_catmull_clark_on_a_mixed_mesh():
    """A closed mesh of triangles and quads with extraordinary vertices (a square
    pyramid: an apex of valence 4 and four triangles around a quad base), level 1, and
    the cube's level 2, both against the textbook implementation above."""
    pyramid = np.array([[0, 0, 1.2], [-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    faces = [[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 4, 3, 2]]
    padded = np.array([f + [-1] * (4 - len(f)) for f in faces])
    np.testing.assert_allclose(refine(padded, 5, 1).stencils.apply(pyramid),
                               _reference_catmull_clark(pyramid, faces), atol=1e-12)
    matrix, quads, _ = refine_once(CUBE_FACES, 8)
    level_one = matrix.apply(CUBE)
    np.testing.assert_allclose(refine(CUBE_FACES, 8, 2).stencils.apply(CUBE),
                               _reference_catmull_clark(level_one, quads.tolist()), atol=1e-12)


def _bspline(t):
    """The uniform cubic B-spline basis centred at 0 (support [-2, 2])."""
    t = np.abs(t)
    return np.where(t < 1, 2.0 / 3.0 - t ** 2 + t ** 3 / 2.0, np.where(t < 2, (2.0 - t) ** 3 / 6.0, 0.0))


def test_regular_grid_interior_lies_on_the_bicubic_bspline_surface():
    """An 8 x 8 grid of random control points, 2 levels: the limit of every interior
    refined vertex (the regular limit mask (16 v + 4 edge + 1 diagonal) / 36) equals the
    bicubic uniform B-spline surface at its parameter. The parameter is the refinement of
    the control indices (i, j) themselves: B-splines reproduce linear functions."""
    n = 8
    rng = np.random.default_rng(5)
    j, i = np.meshgrid(np.arange(n), np.arange(n))
    control = np.stack([i + 0.2 * rng.normal(size=(n, n)), j + 0.2 * rng.normal(size=(n, n)),
                        rng.normal(size=(n, n))], axis=-1).reshape(-1, 3)
    index = np.arange(n * n).reshape(n, n)
    faces = np.stack([index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], axis=-1).reshape(-1, 4)
    refinement = refine(faces, n * n, 2)
    points = refinement.stencils.apply(control)
    parameters = refinement.stencils.apply(np.stack([i, j], axis=-1).reshape(-1, 2).astype(float))
    quads = refinement.quads
    count = refinement.vertex_count
    centre, edge, diagonal, valence = (np.zeros((count, 3)), np.zeros((count, 3)), np.zeros((count, 3)),
                                       np.zeros(count))
    for c in range(4):
        v = quads[:, c]
        np.add.at(edge, v, points[quads[:, (c + 1) % 4]] + points[quads[:, (c + 3) % 4]])
        np.add.at(diagonal, v, points[quads[:, (c + 2) % 4]])
        np.add.at(valence, v, 1)
    limit = (16.0 * points + 2.0 * edge + diagonal) / 36.0  # each edge neighbour is counted by 2 quads
    inside = np.all((parameters >= 2.0) & (parameters <= n - 3.0), axis=1) & (valence == 4)
    assert inside.sum() >= 100
    u, v = parameters[inside, 0], parameters[inside, 1]
    basis = _bspline(u[:, None] - np.arange(n))[:, :, None] * _bspline(v[:, None] - np.arange(n))[:, None, :]
    surface = np.einsum("kij,ijc->kc", basis, control.reshape(n, n, 3))
    np.testing.assert_allclose(limit[inside], surface, atol=1e-12)


def test_boundary_vertices_follow_the_cubic_bspline_curve_rule():
    """An open 3 x 3 quad grid: a boundary vertex becomes (Q1 + 6 P + Q2) / 8 along the
    border, a boundary edge its midpoint; a corner (two boundary edges) the same rule."""
    n = 4
    j, i = np.meshgrid(np.arange(n), np.arange(n))
    rng = np.random.default_rng(2)
    control = np.stack([i, j, rng.normal(size=(n, n))], axis=-1).reshape(-1, 3).astype(float)
    index = np.arange(n * n).reshape(n, n)
    faces = np.stack([index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], axis=-1).reshape(-1, 4)
    points = refine(faces, n * n, 1).stencils.apply(control)
    border = index[0, 1]  # between index[0, 0] and index[0, 2]
    np.testing.assert_allclose(points[border], (control[index[0, 0]] + 6 * control[border] + control[index[0, 2]]) / 8)
    corner = index[0, 0]
    np.testing.assert_allclose(points[corner], (control[index[1, 0]] + 6 * control[corner] + control[index[0, 1]]) / 8)


def test_triangles_give_three_quads_and_uvs_stay_in_their_faces():
    """A triangle gives 3 quads at level 1 (12 at level 2); face-varying UVs are split
    linearly inside each face, so a refined corner's UV lies in its face's UV triangle."""
    faces = np.array([[0, 1, 2, -1], [0, 2, 3, -1]])
    uvs = np.array([[[0, 0], [0.4, 0], [0.4, 0.4], [0, 0]], [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0, 0]]])
    refinement = refine(faces, 4, 2, uvs)
    assert len(refinement.quads) == 24 and refinement.triangles().shape == (48, 3)
    position_index, triangles, split_uvs = split_vertices(refinement)
    assert triangles.shape == (48, 3) and len(split_uvs) == len(position_index)
    corners = split_uvs[triangles]  # each refined triangle's corners: all in one face's chart
    in_first = np.all(corners <= 0.4 + 1e-6, axis=(1, 2)) & np.all(corners >= -1e-6, axis=(1, 2))
    in_second = np.all(corners >= 0.5 - 1e-6, axis=(1, 2)) & np.all(corners <= 0.9 + 1e-6, axis=(1, 2))
    assert np.all(in_first ^ in_second) and in_first.sum() == 24


def test_top_stencils_keep_the_largest_weights():
    """Level 2 on the cube: every stencil's 8 largest weights, largest first, keep most of
    the weight; with room for all, they keep it all (sums of 1)."""
    refinement = refine(CUBE_FACES, 8, 2)
    cages, weights = refinement.top_stencils(8)
    assert np.all(np.diff(weights, axis=1) <= 1e-15)
    assert weights.sum(axis=1).min() > 0.75
    np.testing.assert_allclose(refinement.top_stencils(64)[1].sum(axis=1), 1.0, atol=1e-12)


def test_a_cage_obj_keeps_its_quads(tmp_path):
    """Written and read back, a cage of quads and triangles keeps every polygon as it was."""
    faces = np.array([[0, 1, 2, 3], [0, 3, 4, -1]])
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [-1, 0.5, 0]], float)
    uvs = np.random.default_rng(0).uniform(size=(2, 4, 2))
    write_cage(tmp_path / "c.cage.obj", positions, faces, uvs)
    text = (tmp_path / "c.cage.obj").read_text()
    assert [len(line.split()) - 1 for line in text.splitlines() if line.startswith("f ")] == [4, 3]
    read_positions, read_faces, read_uvs = read_cage(tmp_path / "c.cage.obj")
    np.testing.assert_array_equal(read_faces, faces)
    np.testing.assert_array_equal(read_positions, positions)
    np.testing.assert_array_equal(read_uvs[0], uvs[0])
    np.testing.assert_array_equal(read_uvs[1, :3], uvs[1, :3])


@pytest.mark.parametrize("body, problem", [
    ("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 2 0\nvt 0 0\nf 1/1 2/1 3/1 4/1 5/1\n", "5-sided"),
    ("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n", "without texture coordinates"),
    ("v 0 0 0\nv 1 0 0\nv 1 1 0\nvt 0 0\nf 1/1 2/1 9/1\n", "not valid"),
])
def test_a_bad_cage_is_one_clear_error(tmp_path, body, problem):
    path = tmp_path / "bad.obj"
    path.write_text(body)
    with pytest.raises(SgeError, match=problem) as error:
        read_cage(path)
    assert "\n" not in str(error.value)
