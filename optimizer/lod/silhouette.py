"""Silhouettes of a triangle mesh on the CPU: which pixels it covers from a view.

The LOD job uses them to check a decimation's shape without the GPU pipeline (which is
built around one LOD and one reference): a candidate triangle budget is decimated and its
silhouettes are compared with the source's, in milliseconds per view for thousands of
triangles. Pixels are sampled at their centres; both masks of a comparison come from here,
so they follow the same rule.
"""

from __future__ import annotations

import numpy as np

from ..metrics import silhouette_iou

CHUNK_SAMPLES = 1 << 21  # pixel tests per vectorised batch: bounds the temporary arrays
SHAPE_RESOLUTION = 128   # pixels across a silhouette (the LOD job's default render size)


def coverage_mask(positions: np.ndarray, triangles: np.ndarray, model_view_projection: np.ndarray,
                  size: int) -> np.ndarray:
    """(size, size) bool: the pixels whose centre a triangle covers, row 0 at the bottom
    (NDC y = -1). ``positions`` (V, 3) lie in front of the camera (the LOD job's views see
    the unit sphere from 2.8 radii, in front of their near plane)."""
    positions = np.asarray(positions, np.float64)
    clip = np.c_[positions, np.ones(len(positions))] @ np.asarray(model_view_projection, np.float64).T
    pixels = (clip[:, :2] / clip[:, 3:4] * 0.5 + 0.5) * size - 0.5  # pixel centres at integers
    corners = pixels[np.asarray(triangles)]
    lo = np.clip(np.ceil(corners.min(axis=1)), 0, size).astype(np.int64)
    hi = np.clip(np.floor(corners.max(axis=1)), -1, size - 1).astype(np.int64)
    span = hi - lo + 1
    extent = span.max(axis=1)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    det = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    drawn = (span.min(axis=1) > 0) & (np.abs(det) > 1e-12)
    mask = np.zeros(size * size, bool)
    # Triangles grouped by the power of two that holds their bounding box: each group is
    # tested on a k x k grid at once (vectorised), wasting at most 3/4 of the tests.
    k = 1
    while True:
        group = np.flatnonzero(drawn & (extent <= k) & (extent > k // 2))
        for start in range(0, len(group), max(1, CHUNK_SAMPLES // (k * k))):
            t = group[start:start + max(1, CHUNK_SAMPLES // (k * k))]
            offsets = np.arange(k)
            xs = lo[t, 0, None, None] + offsets[None, None, :]
            ys = lo[t, 1, None, None] + offsets[None, :, None]
            ax, ay, bx, by, cx, cy = (v[t, None, None] for v in (a[:, 0], a[:, 1], b[:, 0], b[:, 1], c[:, 0], c[:, 1]))
            d = det[t, None, None]
            w0 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / d
            w1 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / d
            inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (1.0 - w0 - w1 >= -1e-9) & \
                (xs <= hi[t, 0, None, None]) & (ys <= hi[t, 1, None, None])
            mask[(ys * size + xs)[inside]] = True
        if k >= size:
            break
        k *= 2
    return mask.reshape(size, size)


def silhouettes(positions: np.ndarray, triangles: np.ndarray, views, size: int) -> list[np.ndarray]:
    """``coverage_mask`` from each of ``views`` (model-view-projection matrices)."""
    return [coverage_mask(positions, triangles, view, size) for view in views]


def mean_iou(positions: np.ndarray, triangles: np.ndarray, reference_masks: list[np.ndarray], views,
             size: int) -> float:
    """Mean silhouette IoU of a mesh against ``reference_masks`` taken from ``views``."""
    masks = silhouettes(positions, triangles, views, size)
    return float(np.mean([silhouette_iou(mask, reference) for mask, reference in zip(masks, reference_masks)]))
