"""Fitting the cage so its refined surface lies on the reference, before any bake.

Catmull-Clark shrinks a coarse cage (a decimation's thin parts most): the refined
vertices R = S C (S the refined-vertex x cage-vertex stencils, C the cage) lie inside the
source. ``fit_cage`` moves C by a few rounds of linear least squares (iterative closest
points through the stencils):

- samples P of the reference surface (area-weighted, seeded) stand for it;
- forward pairs: each refined vertex and its nearest sample;
- backward pairs: each sample and its nearest refined vertex (so a thin part the refined
  surface has lost still pulls the nearest refined vertices, and through them the cage,
  out: the forward pairs alone would let a shrunken limb stay shrunken), each refined
  vertex's samples averaged and weighted by how many there are, relative to the mean;
- C' = argmin sum_forward |S_i C - P_i|^2 + sum_backward w_i |S_i C - mean_i|^2
  + damping |C - C_now|^2, a dense (cage x cage) normal-equation solve.

Nearest points by brute force in chunks (|a|^2 + |b|^2 - 2 a.b); the refined vertices
number a few thousand and the samples ``SAMPLES``, so it is cheap on the host.
"""

from __future__ import annotations

import numpy as np

from .stencils import Sparse

SAMPLES = 20_000
ROUNDS = 8
DAMPING = 0.05  # relative to the mean diagonal of S^T S
CHUNK = 2048
BACKWARD_WEIGHT = 1.0  # the backward pairs' weight against the forward pairs'


def surface_samples(positions: np.ndarray, triangles: np.ndarray, count: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """``count`` points on the triangles, uniform by area (seeded)."""
    positions = np.asarray(positions, np.float64)
    corners = positions[np.asarray(triangles, np.int64)]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    total = area.sum()
    if not total > 0:
        return positions.copy()
    chosen = rng.choice(len(corners), size=count, p=area / total)
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u, v = np.where(flip, 1.0 - u, u), np.where(flip, 1.0 - v, v)
    c = corners[chosen]
    return c[:, 0] + u[:, None] * (c[:, 1] - c[:, 0]) + v[:, None] * (c[:, 2] - c[:, 0])


def nearest(queries: np.ndarray, points: np.ndarray, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the index of its nearest point and the distance to it."""
    queries, points = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    squared = (points ** 2).sum(axis=1)
    index = np.empty(len(queries), np.int64)
    distance = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d = squared[None, :] - 2.0 * (q @ points.T)
        k = np.argmin(d, axis=1)
        index[start:start + chunk] = k
        distance[start:start + chunk] = np.sqrt(np.maximum(d[np.arange(len(q)), k] + (q ** 2).sum(axis=1), 0.0))
    return index, distance


def _gram(stencils: Sparse, weights: np.ndarray) -> np.ndarray:
    """S^T diag(weights) S, dense (cage x cage)."""
    n = stencils.shape[1]
    rows = stencils.row_of_entries()
    lengths = np.diff(stencils.offsets)
    # Every pair of entries (e, f) in one row: e runs over the entries, f over its row's.
    entry = np.repeat(np.arange(len(rows)), lengths[rows])
    within = np.arange(len(entry)) - np.repeat(np.cumsum(lengths[rows]) - lengths[rows], lengths[rows])
    other = stencils.offsets[rows[entry]] + within
    values = weights[rows[entry]] * stencils.values[entry] * stencils.values[other]
    gram = np.bincount(stencils.columns[entry] * n + stencils.columns[other], values, n * n)
    return gram.reshape(n, n)


def _transpose_apply(stencils: Sparse, values: np.ndarray) -> np.ndarray:
    """S^T values for dense (rows, 3) values."""
    rows = stencils.row_of_entries()
    out = np.zeros((stencils.shape[1], values.shape[1]))
    np.add.at(out, stencils.columns, stencils.values[:, None] * values[rows])
    return out


def fit_cage(stencils: Sparse, cage: np.ndarray, samples: np.ndarray, rounds: int = ROUNDS,
             damping: float = DAMPING, backward: bool = True,
             backward_weight: float = BACKWARD_WEIGHT) -> tuple[np.ndarray, list[float]]:
    """The cage moved so its refined vertices lie on the sampled surface (module docs);
    returns it and, per round and after the last, the symmetric mean distance
    (refined vertex -> nearest sample, sample -> nearest refined vertex, averaged)."""
    cage = np.asarray(cage, np.float64).copy()
    samples = np.asarray(samples, np.float64)
    refined_count = stencils.shape[0]
    history = []
    for round_ in range(rounds + 1):
        refined = stencils.apply(cage)
        forward_index, forward_distance = nearest(refined, samples)
        backward_index, backward_distance = nearest(samples, refined)
        history.append(0.5 * (forward_distance.mean() + backward_distance.mean()))
        if round_ == rounds:
            break
        weights = np.ones(refined_count)
        right = samples[forward_index].copy()
        if backward:
            count = np.bincount(backward_index, minlength=refined_count).astype(np.float64)
            sums = np.zeros((refined_count, 3))
            np.add.at(sums, backward_index, samples)
            relative = backward_weight * count * refined_count / len(samples)
            # Both pairs of a refined vertex in one row: weights 1 and `relative`.
            right = (right + sums / np.maximum(count, 1.0)[:, None] * relative[:, None]) / (1.0 + relative)[:, None]
            weights = 1.0 + relative
        gram = _gram(stencils, weights)
        mu = damping * float(np.mean(np.diag(gram)))
        gram[np.diag_indices_from(gram)] += mu
        rhs = _transpose_apply(stencils, weights[:, None] * right) + mu * cage
        cage = np.linalg.solve(gram, rhs)
    return cage, history
