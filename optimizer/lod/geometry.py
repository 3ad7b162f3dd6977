"""Building an initial LOD from a detailed mesh: weld, decimate (quadric error, through
fast-simplification, with or without its open borders kept, whichever keeps the source's
silhouettes better), unwrap a fresh UV atlas (xatlas) and give every vertex a normal and a
tangent frame. The LOD job then optimises what comes out of here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SgeError
from .silhouette import SHAPE_RESOLUTION, mean_iou, silhouettes

SHAPE_KEPT = 0.9  # mean silhouette IoU at or above which a LOD has kept the source's shape
BUDGET_GROWTH = 1.25  # ratio between the triangle budgets tried when looking for one that keeps it


@dataclass
class LodGeometry:
    """An unwrapped triangle mesh whose UV seams split vertices that share a position.

    ``positions`` (W, 3) are the welded positions; ``position_index`` (V,) gives each of
    the V split vertices its position; ``triangles`` (T, 3) index the split vertices, which
    carry ``uvs``, ``normals``, ``tangents`` and ``binormals`` (V, 2 or 3).
    """

    positions: np.ndarray
    position_index: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    binormals: np.ndarray

    @property
    def vertex_positions(self) -> np.ndarray:
        return self.positions[self.position_index]


def row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot product of each row of two (..., 3) arrays, summed x + y + z in that order.
    np.einsum's SIMD kernels sum by the arrays' memory alignment, so their last bits
    changed from run to run (and between a run and its resume): host-side arithmetic that
    feeds an output is written out element by element."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def weighted_rows(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """sum_k weights[:, k] * rows[:, k] for (N, K) weights and (N, K, C) rows, in order of
    k (row_dot says why not einsum)."""
    total = weights[:, 0, None] * rows[:, 0]
    for k in range(1, weights.shape[1]):
        total = total + weights[:, k, None] * rows[:, k]
    return total


def weld(positions: np.ndarray, triangles: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``tolerance`` (on a grid of that size): models split
    vertices at every UV and material seam, and a decimator would open those seams.
    Triangles that collapse to a line or point are dropped."""
    keys = np.round(np.asarray(positions, np.float64) / tolerance).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    welded = np.asarray(positions, np.float32)[first]
    triangles = inverse.ravel()[triangles]
    keep = (triangles[:, 0] != triangles[:, 1]) & (triangles[:, 1] != triangles[:, 2]) & \
           (triangles[:, 0] != triangles[:, 2])
    return welded, triangles[keep].astype(np.int32)


def weld_first(positions: np.ndarray, tolerance: float) -> np.ndarray:
    """For each vertex ``weld`` keeps, the index of the input vertex it was taken from."""
    keys = np.round(np.asarray(positions, np.float64) / tolerance).astype(np.int64)
    return np.unique(keys, axis=0, return_index=True)[1]


DEFAULT_AGGRESSIVENESS = 7  # fast-simplification's own default: the LOD job's decimation


def decimate(positions: np.ndarray, triangles: np.ndarray, target: int, keep_borders: bool = False,
             aggressiveness: int = DEFAULT_AGGRESSIVENESS) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation to about ``target`` triangles (fast-simplification).
    ``keep_borders``: no vertex on an open border (an edge of one triangle) is collapsed,
    so an open surface (a ground, a wall) keeps its outline; the budget may then be missed.
    ``aggressiveness``: fast-simplification's ``agg`` (lower collapses more evenly)."""
    import fast_simplification

    if target >= len(triangles):
        return positions, triangles
    reduction = 1.0 - target / len(triangles)
    points, faces = fast_simplification.simplify(np.asarray(positions, np.float32),
                                                 np.asarray(triangles, np.int64), target_reduction=reduction,
                                                 agg=aggressiveness, preserve_border=keep_borders)
    used = np.unique(faces)
    remap = np.full(len(points), -1, np.int64)
    remap[used] = np.arange(len(used))
    return np.asarray(points, np.float32)[used], remap[faces].astype(np.int32)


@dataclass
class Decimation:
    """A decimated mesh, whether its open borders were kept, and its mean silhouette IoU
    against the source's from the views it was chosen on (None: not measured)."""

    positions: np.ndarray
    triangles: np.ndarray
    kept_borders: bool
    iou: float | None


def decimate_keeping_shape(positions: np.ndarray, triangles: np.ndarray, target: int, views=None,
                           source_masks: list | None = None) -> Decimation:
    """Decimate to at most about ``target`` triangles both ways, borders free and borders
    kept, and return the one whose silhouettes from ``views`` match the source's better
    (ties: borders free). Measured: keeping borders saves an open scene (Panda3D's
    models/environment to 300 triangles: IoU 0.20 -> 0.9996), and ruins meshes with many
    small openings, whose border vertices then take up the budget (models/jack to 200:
    0.99 -> 0.68), so neither is right for every mesh. Without ``views``, or for a closed
    mesh (no open border: both ways decimate alike), borders free and nothing compared."""
    free = Decimation(*decimate(positions, triangles, target), kept_borders=False, iou=None)
    if views is None or target >= len(triangles) or not has_open_border(triangles):
        return free
    if source_masks is None:
        source_masks = silhouettes(positions, triangles, views, SHAPE_RESOLUTION)
    free.iou = mean_iou(free.positions, free.triangles, source_masks, views, SHAPE_RESOLUTION)
    kept = Decimation(*decimate(positions, triangles, target, keep_borders=True), kept_borders=True, iou=None)
    if len(kept.triangles) > max(target, len(free.triangles)):  # its border vertices alone need more
        return free
    kept.iou = mean_iou(kept.positions, kept.triangles, source_masks, views, SHAPE_RESOLUTION)
    return kept if kept.iou > free.iou else free


def has_open_border(triangles: np.ndarray) -> bool:
    """Whether some edge of the mesh belongs to one triangle only."""
    triangles = np.asarray(triangles, np.int64)
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges[:, 0] * (int(triangles.max(initial=0)) + 1) + edges[:, 1], return_counts=True)
    return bool(np.any(counts == 1))


def budget_keeping_shape(positions: np.ndarray, triangles: np.ndarray, start: int, views,
                         threshold: float = SHAPE_KEPT) -> tuple[int, float]:
    """The smallest triangle budget of start * 1.25^k (then the mesh's own count) whose
    decimation (``decimate_keeping_shape``) has a mean silhouette IoU of at least
    ``threshold`` against the mesh from ``views``; returns (budget, that IoU). The IoU is
    the decimated mesh's, before any optimisation (which was not seen to lower it)."""
    source_masks = silhouettes(positions, triangles, views, SHAPE_RESOLUTION)
    budget = max(1, int(start))
    while True:
        budget = min(len(triangles), int(np.ceil(budget * BUDGET_GROWTH)))
        decimation = decimate_keeping_shape(positions, triangles, budget, views, source_masks)
        iou = decimation.iou if decimation.iou is not None else \
            mean_iou(decimation.positions, decimation.triangles, source_masks, views, SHAPE_RESOLUTION)
        if iou >= threshold or budget >= len(triangles):
            return budget, iou


def face_vectors(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Each triangle's normal scaled by twice its area (the cross product of two edges)."""
    corners = positions[triangles]
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def vertex_normals(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit; +z for a vertex of zero area)."""
    face = face_vectors(positions, triangles)
    normals = np.zeros_like(positions, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    return _normalise(normals, fallback=(0.0, 0.0, 1.0)).astype(np.float32)


def unwrap(positions: np.ndarray, triangles: np.ndarray, texture_size: int,
           padding: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A UV atlas for a ``texture_size``^2 texture (xatlas): (position_index (V,),
    triangles (T, 3) over the V split vertices, uvs (V, 2) in [0, 1], v up)."""
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(np.asarray(positions, np.float32), np.asarray(triangles, np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = padding  # texels between charts, so bilinear samples stay in their chart
    pack.bilinear = True
    atlas.generate(pack_options=pack)
    position_index, faces, uvs = atlas[0]
    if len(faces) != len(triangles):
        raise SgeError(f"the UV unwrap lost triangles ({len(faces)} of {len(triangles)}); try another --triangles")
    return position_index.astype(np.int32), faces.astype(np.int32), uvs.astype(np.float32)


def tangent_frames(positions: np.ndarray, normals: np.ndarray, uvs: np.ndarray,
                   triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex tangents (along +u) and binormals, orthonormal to the normal
    (Gram-Schmidt), from each triangle's UV derivatives: the frame a tangent-space normal
    map is read in, by our shader and by Panda3D's auto-shader alike.

    The binormal points along **-v**, as Panda3D's vertex data must hold it for a normal
    map whose green channel points along +v (the OpenGL convention of Blender and glTF):
    Panda3D's shader generator bends the normal along the *negated* binormal column
    (1.10's shaderGenerator.cxx: ``-vtx_binormal``), and ``shaders/surface/surface.frag`` reads the
    column the same way, so one map and one vertex frame are right in both renderers."""
    p, t = positions[triangles].astype(np.float64), uvs[triangles].astype(np.float64)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    scale = np.where(np.abs(det) > 1e-20, 1.0 / np.where(det == 0, 1.0, det), 0.0)[:, None]
    face_tangent = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * scale
    face_binormal = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * scale
    tangents = np.zeros_like(normals, dtype=np.float64)
    binormals = np.zeros_like(normals, dtype=np.float64)
    for k in range(3):
        np.add.at(tangents, triangles[:, k], face_tangent)
        np.add.at(binormals, triangles[:, k], face_binormal)
    n = normals.astype(np.float64)
    tangents -= n * np.sum(n * tangents, axis=1, keepdims=True)
    tangents = _normalise(tangents, fallback=None, normals=n)
    # The binormal keeps the UV handedness (mirrored charts) but is made orthogonal, and is
    # stored negated (along -v) for the shader generator's -binormal (see above).
    handedness = np.where(np.sum(np.cross(n, tangents) * binormals, axis=1) < 0, -1.0, 1.0)[:, None]
    binormals = -np.cross(n, tangents) * handedness
    return tangents.astype(np.float32), binormals.astype(np.float32)


def _normalise(vectors: np.ndarray, fallback, normals=None) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    bad = length[:, 0] < 1e-12
    out = vectors / np.where(length < 1e-12, 1.0, length)
    if bad.any():
        if normals is None:
            out[bad] = fallback
        else:
            # Any unit vector perpendicular to the normal.
            helper = np.where(np.abs(normals[bad, 0:1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
            perpendicular = np.cross(normals[bad], helper)
            out[bad] = perpendicular / np.linalg.norm(perpendicular, axis=1, keepdims=True)
    return out


def build_lod(positions: np.ndarray, triangles: np.ndarray, target_triangles: int, texture_size: int,
              weld_tolerance: float, shape_views=None, skinning=None) -> tuple[LodGeometry, Decimation]:
    """The initial LOD of a mesh: welded, decimated to about ``target_triangles`` (with
    ``shape_views``, borders kept or free by ``decimate_keeping_shape``), unwrapped for a
    ``texture_size``^2 atlas, with normals and tangent frames; and the decimation.
    ``skinning``: (weights (V, J) per vertex of ``positions``, moves (1 + P, J, 4, 4)) of a
    skinned mesh, decimated by its quadrics over the bind and P sample poses instead
    (deforming.decimate_deforming; open borders free)."""
    welded, welded_triangles = weld(positions, triangles, weld_tolerance)
    if len(welded_triangles) == 0:
        raise SgeError("the model has no triangles of non-zero size; give a model with real faces")
    if skinning is not None:
        from .deforming import decimate_deforming
        weights, moves = skinning
        decimation = Decimation(*decimate_deforming(welded, welded_triangles, target_triangles,
                                                    np.asarray(weights)[weld_first(positions, weld_tolerance)], moves),
                                kept_borders=False, iou=None)
    else:
        decimation = decimate_keeping_shape(welded, welded_triangles, target_triangles, shape_views)
    if len(decimation.triangles) == 0:
        raise SgeError(f"decimating to {target_triangles} triangles left none; ask for more --triangles")
    return unwrapped_geometry(decimation.positions, decimation.triangles, texture_size), decimation


def unwrapped_geometry(points: np.ndarray, faces: np.ndarray, texture_size: int) -> LodGeometry:
    """A decimated mesh unwrapped for a ``texture_size``^2 atlas, with its vertex normals
    and tangent frames."""
    position_index, split_triangles, uvs = unwrap(points, faces, texture_size)
    normals = vertex_normals(points, faces)[position_index]
    tangents, binormals = tangent_frames(points[position_index], normals, uvs, split_triangles)
    return LodGeometry(points, position_index, split_triangles, uvs, normals, tangents, binormals)


def given_lod(positions: np.ndarray, triangles: np.ndarray, uvs: np.ndarray | None, normals: np.ndarray,
              texture_size: int) -> LodGeometry:
    """A LOD the user made: its triangles as they are, vertices that share a position
    welded into one optimised position (so UV seams cannot tear), its own UVs when they
    lie in [0, 1] and are not all equal (else a fresh xatlas atlas), its normals, and
    tangent frames from the UVs."""
    positions = np.asarray(positions, np.float32)
    triangles = np.asarray(triangles, np.int32)
    _, first, position_index = np.unique(positions, axis=0, return_index=True, return_inverse=True)
    welded = positions[first]
    position_index = position_index.ravel().astype(np.int32)
    usable = uvs is not None and len(uvs) == len(positions) and np.all(np.isfinite(uvs)) and \
        uvs.min() >= 0.0 and uvs.max() <= 1.0 and np.ptp(uvs, axis=0).min() > 0.0
    if usable:
        split_triangles, split_uvs, normals = triangles, np.asarray(uvs, np.float32), np.asarray(normals, np.float32)
    else:
        unwrapped_index, split_triangles, split_uvs = unwrap(welded, position_index[triangles], texture_size)
        normals = vertex_normals(welded, position_index[triangles])[unwrapped_index]
        position_index = unwrapped_index
    tangents, binormals = tangent_frames(welded[position_index], normals, split_uvs, split_triangles)
    return LodGeometry(welded, position_index, split_triangles, split_uvs, normals, tangents, binormals)


def rasterize_uv(uvs: np.ndarray, triangles: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each texel centre of a size^2 atlas: the triangle covering it in UV space (-1:
    none) and its barycentric coordinates there. Row 0 is v = 0."""
    triangle_of = np.full((size, size), -1, np.int32)
    barycentric = np.zeros((size, size, 3), np.float32)
    corners = uvs[triangles].astype(np.float64) * size - 0.5  # texel-centre coordinates
    lo = np.clip(np.floor(corners.min(axis=1)).astype(int), 0, size - 1)
    hi = np.clip(np.ceil(corners.max(axis=1)).astype(int), 0, size - 1)
    for index, (a, b, c) in enumerate(corners):
        ys, xs = np.mgrid[lo[index, 1]:hi[index, 1] + 1, lo[index, 0]:hi[index, 0] + 1]
        det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(det) < 1e-12:
            continue
        w0 = ((b[1] - c[1]) * (xs - c[0]) + (c[0] - b[0]) * (ys - c[1])) / det
        w1 = ((c[1] - a[1]) * (xs - c[0]) + (a[0] - c[0]) * (ys - c[1])) / det
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-6) & (w1 >= -1e-6) & (w2 >= -1e-6)
        triangle_of[ys[inside], xs[inside]] = index
        barycentric[ys[inside], xs[inside]] = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
    return triangle_of, barycentric


def despeckle(values: np.ndarray, weight: np.ndarray, known: np.ndarray, ratio: float,
              least_neighbours: int = 3) -> np.ndarray:
    """A baked map's under-sampled texels replaced by their neighbours' weighted mean: a
    known texel whose bake weight is below ``ratio`` times the mean weight of its known
    8-neighbours (at least ``least_neighbours`` of them) was seen by a stray grazing sample
    or two, and shows as an isolated speck. ``values`` (H, W, C), ``weight`` and ``known``
    (H, W)."""
    height, width = known.shape
    w = np.pad(np.where(known, weight, 0.0), 1)
    k = np.pad(known, 1).astype(np.float64)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    weights, count = np.zeros((height, width)), np.zeros((height, width))
    for dy, dx in offsets:
        window = np.s_[1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
        weights += w[window]
        count += k[window]
    speck = known & (count >= least_neighbours) & (weight * np.maximum(count, 1) < ratio * weights)
    rows, columns = np.nonzero(speck)  # few: their neighbours' values are gathered alone
    v = np.pad(values, ((1, 1), (1, 1), (0, 0)))
    sums = sum(w[rows + 1 + dy, columns + 1 + dx][:, None] * v[rows + 1 + dy, columns + 1 + dx] for dy, dx in offsets)
    out = values.copy()
    out[rows, columns] = sums / weights[rows, columns][:, None]
    return out


def fill_holes(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the texels not ``known`` (chart gutters, texels no view saw) by push-pull: the
    known texels are averaged into ever coarser levels, and each unknown texel takes the
    average of the finest level around it that has any, so bilinear samples at chart
    borders and unseen texels get their neighbourhood's colour. Known texels are kept."""
    values = np.where(known[..., None], values, 0.0).astype(np.float32)
    if known.all() or not known.any():
        return values if known.any() else np.full_like(values, 0.5)
    levels = []
    total, count = values * known[..., None], known.astype(np.float32)
    while True:
        levels.append((total, count))
        if max(count.shape) == 1:
            break
        height, width = count.shape
        pad = ((0, height % 2), (0, width % 2))
        total = np.pad(total, (*pad, (0, 0)))
        count = np.pad(count, pad)
        total = total.reshape(total.shape[0] // 2, 2, total.shape[1] // 2, 2, -1).sum(axis=(1, 3))
        count = count.reshape(count.shape[0] // 2, 2, count.shape[1] // 2, 2).sum(axis=(1, 3))
    filled = levels[-1][0] / np.maximum(levels[-1][1], 1e-12)[..., None]
    for total, count in reversed(levels[:-1]):
        height, width = count.shape
        coarse = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:height, :width]
        filled = np.where(count[..., None] > 0, total / np.maximum(count, 1e-12)[..., None], coarse)
    return np.where(known[..., None], values, filled).astype(np.float32)
