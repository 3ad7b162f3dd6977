"""Catmull-Clark stencils, computed once on the host: every vertex of the cage refined L
levels as a fixed linear combination of cage vertices.

A cage is polygons of 3 or 4 corners (``faces``: (F, 4) vertex indices, -1 in the 4th
column of a triangle) over welded vertices, with face-varying UVs ((F, 4, 2)), so a UV
seam does not cut the surface. One level (Catmull & Clark 1978; the boundary and crease
rules of DeRose et al. 1998 / OpenSubdiv's "edge only" boundaries):

- face point: the mean of the face's corners;
- edge point: (a + b + f0 + f1) / 4 for an edge with two faces, the midpoint (a + b) / 2
  on a boundary (an edge with one face, or a non-manifold one with three or more);
- vertex point, valence n, interior: ((n - 2) P + (1/n) sum Q_e + (1/n) sum F_f) / n
  (Q_e the far ends of its edges, F_f its faces' points); on a boundary (exactly two
  boundary edges): (6 P + Q_1 + Q_2) / 8 along those; any other number of boundary edges
  (a corner of non-manifold edges): P stays.

A k-gon gives k quads; UVs are subdivided linearly inside each face (face-varying, as
OpenSubdiv's linear face-varying interpolation), so every refined quad keeps its face's
chart. Stencils are sparse (row, cage vertex, weight) matrices composed level by level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SgeError


@dataclass
class Sparse:
    """A sparse (rows x columns) matrix in CSR form."""

    offsets: np.ndarray   # (rows + 1,) int64
    columns: np.ndarray   # (nnz,) int64
    values: np.ndarray    # (nnz,) float64
    shape: tuple[int, int]

    @classmethod
    def from_entries(cls, rows, columns, values, shape) -> "Sparse":
        """Duplicates summed, zeros dropped, each row's columns ascending."""
        rows, columns = np.asarray(rows, np.int64), np.asarray(columns, np.int64)
        keys, inverse = np.unique(rows * shape[1] + columns, return_inverse=True)
        summed = np.bincount(inverse.ravel(), np.asarray(values, np.float64), len(keys))
        keep = summed != 0.0
        keys, summed = keys[keep], summed[keep]
        row = keys // shape[1]
        offsets = np.zeros(shape[0] + 1, np.int64)
        np.add.at(offsets, row + 1, 1)
        return cls(np.cumsum(offsets), keys % shape[1], summed, shape)

    @classmethod
    def identity(cls, n: int) -> "Sparse":
        return cls(np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64), np.ones(n), (n, n))

    def row_of_entries(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.offsets))

    def __matmul__(self, other: "Sparse") -> "Sparse":
        """self @ other, both sparse: each entry (r, k, a) meets other's row k."""
        rows = self.row_of_entries()
        lengths = np.diff(other.offsets)[self.columns]
        starts = other.offsets[self.columns]
        total = int(lengths.sum())
        # Positions into other's entries: starts[e] + 0 .. lengths[e] - 1 for each entry e.
        entry = np.repeat(np.arange(len(self.columns)), lengths)
        within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        source = starts[entry] + within
        return Sparse.from_entries(rows[entry], other.columns[source], self.values[entry] * other.values[source],
                                   (self.shape[0], other.shape[1]))

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape)
        out[self.row_of_entries(), self.columns] = self.values
        return out

    def apply(self, values: np.ndarray) -> np.ndarray:
        """self @ values for dense (columns, C) values."""
        values = np.asarray(values, np.float64)
        products = self.values[:, None] * values[self.columns]
        out = np.zeros((self.shape[0], values.shape[1]))
        np.add.at(out, self.row_of_entries(), products)
        return out


def _corner_counts(faces: np.ndarray) -> np.ndarray:
    return (faces >= 0).sum(axis=1)


def check_cage(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 4 or len(faces) == 0:
        raise SgeError(f"a cage needs (F, 4) face corners (-1 in the 4th for a triangle), got shape {faces.shape}")
    faces = faces.astype(np.int64)
    if np.any(faces[:, :3] < 0) or faces.max() >= vertex_count or faces.min() < -1:
        raise SgeError(f"the cage's faces name vertices outside its {vertex_count} vertices")
    return faces


def refine_once(faces: np.ndarray, vertex_count: int, uvs: np.ndarray | None = None):
    """One Catmull-Clark level: (the refinement matrix M, new vertices x old vertices;
    the new quads (4F', 4); their corners' UVs or None). New vertices are numbered
    [vertex points | face points | edge points]."""
    faces = check_cage(faces, vertex_count)
    n, face_count = vertex_count, len(faces)
    k = _corner_counts(faces)
    valid = faces >= 0
    # Corner edges (corner i -> the next corner of its face).
    nxt = np.where(np.arange(4)[None, :] + 1 < k[:, None], np.roll(faces, -1, axis=1), faces[:, :1])
    face_of, corner_of = np.nonzero(valid)
    a, b = faces[face_of, corner_of], nxt[face_of, corner_of]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    edge_keys, corner_edge = np.unique(lo * n + hi, return_inverse=True)
    corner_edge = corner_edge.ravel()
    edge_count = len(edge_keys)
    edge_a, edge_b = edge_keys // n, edge_keys % n
    faces_per_edge = np.bincount(corner_edge, minlength=edge_count)
    interior_edge = faces_per_edge == 2
    face_point, edge_point = n, n + face_count

    rows, cols, vals = [], [], []

    def add(r, c, v):
        rows.append(np.asarray(r, np.int64).ravel())
        cols.append(np.asarray(c, np.int64).ravel())
        vals.append(np.broadcast_to(np.asarray(v, np.float64), np.shape(r)).ravel())

    # Face points.
    add(face_point + face_of, a, 1.0 / k[face_of])
    # Edge points: endpoints, and for interior edges a quarter of each face's point.
    add(edge_point + np.arange(edge_count), edge_a, np.where(interior_edge, 0.25, 0.5))
    add(edge_point + np.arange(edge_count), edge_b, np.where(interior_edge, 0.25, 0.5))
    inner = interior_edge[corner_edge]
    for j in range(4):  # every corner j of the face of each corner edge on an interior edge
        u = faces[face_of, j]
        take = inner & (u >= 0)
        add(edge_point + corner_edge[take], u[take], 0.25 / k[face_of[take]])
    # Vertex points.
    valence = np.bincount(np.concatenate([edge_a, edge_b]), minlength=n).astype(np.float64)
    boundary_edges = np.bincount(np.concatenate([edge_a[~interior_edge], edge_b[~interior_edge]]), minlength=n)
    used = valence > 0
    interior_vertex = used & (boundary_edges == 0)
    crease_vertex = used & (boundary_edges == 2)
    fixed = ~(interior_vertex | crease_vertex)
    vertex = np.arange(n)
    nv = np.where(valence > 0, valence, 1.0)
    add(vertex[interior_vertex], vertex[interior_vertex], ((nv - 2.0) / nv)[interior_vertex])
    add(vertex[crease_vertex], vertex[crease_vertex], 0.75)
    add(vertex[fixed], vertex[fixed], 1.0)
    for end, far in ((edge_a, edge_b), (edge_b, edge_a)):
        take = interior_vertex[end]
        add(end[take], far[take], 1.0 / nv[end[take]] ** 2)
        take = crease_vertex[end] & ~interior_edge
        add(end[take], far[take], 0.125)
    # Each face around an interior vertex: its face point's corners, 1 / (n^2 k) each.
    around = interior_vertex[a]
    for j in range(4):
        u = faces[face_of, j]
        take = around & (u >= 0)
        add(a[take], u[take], 1.0 / (nv[a[take]] ** 2 * k[face_of[take]]))
    new_count = n + face_count + edge_count
    matrix = Sparse.from_entries(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), (new_count, n))

    # New quads: for corner i of a face, [v_i, edge(i, i+1), face point, edge(i-1, i)].
    edge_of_corner = np.full(faces.shape, -1, np.int64)
    edge_of_corner[face_of, corner_of] = corner_edge
    previous_corner = np.where(corner_of > 0, corner_of - 1, k[face_of] - 1)
    quads = np.stack([a, edge_point + edge_of_corner[face_of, corner_of], face_point + face_of,
                      edge_point + edge_of_corner[face_of, previous_corner]], axis=1)
    quad_uvs = None
    if uvs is not None:
        uvs = np.asarray(uvs, np.float64)
        masked = np.where(valid[..., None], uvs, 0.0)
        centre = masked.sum(axis=1) / k[:, None]
        next_corner = np.where(corner_of + 1 < k[face_of], corner_of + 1, 0)
        here = uvs[face_of, corner_of]
        quad_uvs = np.stack([here, (here + uvs[face_of, next_corner]) / 2, centre[face_of],
                             (here + uvs[face_of, previous_corner]) / 2], axis=1)
    return matrix, quads, quad_uvs


@dataclass
class Refinement:
    """A cage refined ``levels`` times.

    ``stencils``: (refined vertices x cage vertices) weights; ``quads``: (Q, 4) refined
    faces over the refined (welded) vertices; ``quad_uvs``: (Q, 4, 2) their corners'
    UVs (face-varying), or None."""

    stencils: Sparse
    quads: np.ndarray
    quad_uvs: np.ndarray | None
    levels: int

    @property
    def vertex_count(self) -> int:
        return self.stencils.shape[0]

    def triangles(self) -> np.ndarray:
        """The quads split along their 0-2 diagonal, (2Q, 3)."""
        q = self.quads
        return np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]], axis=0) if len(q) else np.zeros((0, 3), np.int64)

    def top_stencils(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Each refined vertex's ``count`` largest stencil weights: (V, count) cage
        vertices (-1 where a stencil has fewer) and weights (0 there), largest first."""
        s = self.stencils
        rows = s.row_of_entries()
        order = np.lexsort((-np.abs(s.values), rows))
        rank = np.arange(len(order)) - s.offsets[rows[order]]
        keep = rank < count
        cages = np.full((s.shape[0], count), -1, np.int64)
        weights = np.zeros((s.shape[0], count))
        cages[rows[order][keep], rank[keep]] = s.columns[order][keep]
        weights[rows[order][keep], rank[keep]] = s.values[order][keep]
        return cages, weights


def refine(faces: np.ndarray, vertex_count: int, levels: int, uvs: np.ndarray | None = None) -> Refinement:
    """``levels`` of Catmull-Clark on a cage of triangles and quads (see the module docs)."""
    if not (isinstance(levels, (int, np.integer)) and 1 <= levels <= 4):
        raise SgeError(f"--subdivision must be a level from 1 to 4, got {levels}")
    faces = check_cage(faces, vertex_count)
    stencils = Sparse.identity(vertex_count)
    count = vertex_count
    for _ in range(levels):
        matrix, faces, uvs = refine_once(faces, count, uvs)
        count = matrix.shape[0]
        stencils = matrix @ stencils
    return Refinement(stencils, faces, uvs, levels)


def split_vertices(refinement: Refinement, flipped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The refined triangles over vertices split where their face-varying UVs differ:
    (position_index (V,) into the refined welded vertices, triangles (T, 3) over the V
    split vertices, uvs (V, 2)). Quad k of the refinement is triangles k and Q + k, split
    along its diagonal 0-2, or 1-3 where ``flipped[k]`` (quad_triangles)."""
    quads, quad_uvs = refinement.quads, refinement.quad_uvs
    corner_vertex = quads.ravel()
    corner_uv = quad_uvs.reshape(-1, 2)
    keys = np.concatenate([corner_vertex[:, None].astype(np.float64), np.round(corner_uv, 9)], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    split_quads = inverse.ravel().reshape(quads.shape)
    position_index = corner_vertex[first]
    return position_index.astype(np.int32), quad_triangles(split_quads, flipped), corner_uv[first].astype(np.float32)


def quad_triangles(quads: np.ndarray, flipped: np.ndarray | None = None) -> np.ndarray:
    """(2Q, 3) triangles of (Q, 4) quads: quad k is triangles k and Q + k, (0, 1, 2) and
    (0, 2, 3), or where ``flipped[k]`` (1, 2, 3) and (1, 3, 0) (the other diagonal)."""
    quads = np.asarray(quads)
    along_02 = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], axis=0)
    if flipped is None:
        return along_02.astype(np.int32)
    along_13 = np.concatenate([quads[:, [1, 2, 3]], quads[:, [1, 3, 0]]], axis=0)
    twice = np.concatenate([flipped, flipped]).astype(bool)
    return np.where(twice[:, None], along_13, along_02).astype(np.int32)


def triangle_quads(triangles: np.ndarray, flipped: np.ndarray | None = None) -> np.ndarray:
    """The (Q, 4) quads ``quad_triangles(quads, flipped)`` split into ``triangles``."""
    triangles = np.asarray(triangles)
    count = len(triangles) // 2
    first, second = triangles[:count], triangles[count:]
    quads = np.concatenate([first, second[:, 2:3]], axis=1)  # (0, 1, 2) + 3
    if flipped is not None:  # (1, 2, 3) and (1, 3, 0): corner 0 is the second's last
        flipped = np.asarray(flipped, bool)
        quads[flipped] = np.concatenate([second[flipped][:, 2:3], first[flipped]], axis=1)
    return quads
