"""Decimating a skinned mesh so that its LOD also holds up posed (issue 17).

Quadric-error decimation in the bind pose alone (fast-simplification) spends few vertices
where the bind pose is flat but the skin bends: a T-posed panda's shoulders, hips and
armpits. Posed, such a coarse triangle spans joints that move apart, its interior leaves
the source's surface and the texture baked onto it in the bind pose slides. Here each
vertex's quadric is summed over the bind pose and sample poses of the skeleton (deformation
-sensitive decimation, Mohr and Gleicher, "Deformation Sensitive Decimation", 2003): an
edge collapses cheaply only where the surface stays flat in every pose.

    nets = sample_poses(skin)                                   # (P, J, 4, 4)
    moving = skin_moves(skin, nets, scale, shift)               # bind + P poses, in the mesh's frame
    points, faces = decimate_deforming(positions, triangles, target, dense_weights, moving)

An edge (u, v) collapses to the point x (bind pose) that minimises the summed quadric,
x moving in every pose with the blend of u's and v's influences (their weights summed and
renormalised, kept by the merged vertex for later collapses): x_p = [x 1] M_p(w), so the
cost is [x 1] (sum_p M_p Q_p M_p^T) [x 1]^T, a quadric in x. A collapse that would flip a
triangle in the bind pose, or join two surfaces (the link condition), is skipped.

The sample poses turn every joint about a random axis through its origin by a random
angle of up to SAMPLE_DEGREES (seeded: the same LOD every run); they know nothing of the
source's animations, which the job is not given.
"""

from __future__ import annotations

import heapq

import numpy as np

from .skin import Skin
from ..view import random_direction

SAMPLE_POSES = 16     # poses besides the bind pose
SAMPLE_DEGREES = 45.0  # each joint's largest turn in a sample pose
SAMPLE_SEED = 0
BORDER_WEIGHT = 10.0  # an open border's perpendicular plane, against a face's own
FLIP_COSINE = 0.2     # a collapse may not turn a neighbouring triangle's normal further than this


def sample_poses(skin: Skin, count: int = SAMPLE_POSES, degrees: float = SAMPLE_DEGREES,
                 seed: int = SAMPLE_SEED) -> np.ndarray:
    """(count, J, 4, 4): each joint's net transform (the source's frame) in ``count``
    poses, every joint turned about a random axis through its origin by up to ``degrees``."""
    rng = np.random.default_rng(seed)
    local = skin.local_matrices()
    poses = np.zeros((count, *skin.bind_matrices.shape))
    for pose in poses:
        for j, parent in enumerate(skin.parents):
            axis = random_direction(rng)
            angle = np.radians(degrees) * rng.uniform(-1.0, 1.0)
            k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
            turn = np.eye(4)
            turn[:3, :3] = np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * k @ k
            pose[j] = turn @ local[j] @ (pose[parent] if parent >= 0 else skin.character_matrix)
    return poses


def skin_moves(skin: Skin, nets: np.ndarray, scale: float, shift: np.ndarray) -> np.ndarray:
    """(1 + P, J, 4, 4): how each joint moves a point from the bind pose to each pose
    (identities first: the bind pose), for points in a frame that is the source's scaled
    by ``scale`` and then shifted by ``shift`` (u = x scale + shift)."""
    to_frame = np.eye(4)
    to_frame[:3, :3] *= scale
    to_frame[3, :3] = shift
    moves = np.linalg.inv(skin.bind_matrices)[None] @ np.asarray(nets)
    moves = np.concatenate([np.broadcast_to(np.eye(4), (1, *moves.shape[1:])), moves])
    return np.linalg.inv(to_frame) @ moves @ to_frame


def dense_weights(skin: Skin) -> np.ndarray:
    """(V, J): every vertex's weight per joint."""
    dense = np.zeros((len(skin.weights), len(skin.joint_names)))
    np.add.at(dense, (np.repeat(np.arange(len(dense)), skin.joints.shape[1]), skin.joints.ravel()),
              skin.weights.ravel())
    return dense


def _plane_quadrics(posed: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P, F, 4, 4): each face's plane quadric in each pose, weighted by its area."""
    corners = posed[:, faces]
    normal = np.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])
    twice_area = np.linalg.norm(normal, axis=2, keepdims=True)
    unit = normal / np.maximum(twice_area, 1e-30)
    plane = np.concatenate([unit, -np.einsum("pfj,pfj->pf", unit, corners[:, :, 0])[..., None]], axis=2)
    return np.einsum("pfi,pfj->pfij", plane, plane) * (0.5 * twice_area[..., None])


def _border_quadrics(posed: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The open border edges (E, 2) and, per pose, the quadric (P, E, 4, 4) of the plane
    through each one perpendicular to its face, weighted by BORDER_WEIGHT x its length^2."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    _, inverse, counts = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True, return_counts=True)
    border = counts[inverse.ravel()] == 1
    edges, owner = edges[border], owner[border]
    corners = posed[:, faces[owner]]
    face_normal = np.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])
    start, along = posed[:, edges[:, 0]], posed[:, edges[:, 1]] - posed[:, edges[:, 0]]
    normal = np.cross(along, face_normal)
    normal /= np.maximum(np.linalg.norm(normal, axis=2, keepdims=True), 1e-30)
    plane = np.concatenate([normal, -np.einsum("pej,pej->pe", normal, start)[..., None]], axis=2)
    weight = BORDER_WEIGHT * np.square(along).sum(axis=2)
    return edges, np.einsum("pei,pej->peij", plane, plane) * weight[..., None, None]


def decimate_deforming(positions: np.ndarray, triangles: np.ndarray, target: int, weights: np.ndarray,
                       moves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimate (``positions`` (V, 3) bind pose, ``triangles``) to at most about ``target``
    triangles by edge collapses whose quadrics sum over the poses ``moves`` (1 + P, J, 4, 4:
    skin_moves) with the vertices' ``weights`` (V, J; a row of zeros: a vertex no joint
    moves). Returns (positions (W, 3) float32, triangles (T, 3) int32)."""
    points = np.asarray(positions, np.float64).copy()
    faces = np.asarray(triangles, np.int64).copy()
    weights = np.asarray(weights, np.float64).copy()
    moves = np.asarray(moves, np.float64)
    if target >= len(faces):
        return positions, triangles
    pose_count = len(moves)
    identity = np.broadcast_to(np.eye(4), (pose_count, 4, 4))

    def blend(w: np.ndarray) -> np.ndarray:  # (P, 4, 4): the skinning matrices of weights w
        total = w.sum()
        if total <= 1e-12:
            return identity
        used = np.nonzero(w)[0]
        return np.einsum("j,pjab->pab", w[used] / total, moves[:, used])

    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    posed = np.stack([homogeneous[v] @ blend(weights[v]) for v in range(len(points))], axis=1)[..., :3]
    quadrics = np.zeros((len(points), pose_count, 4, 4))
    face_quadrics = _plane_quadrics(posed, faces).transpose(1, 0, 2, 3)
    for k in range(3):
        np.add.at(quadrics, faces[:, k], face_quadrics)
    border_edges, border = _border_quadrics(posed, faces)
    for k in range(2):
        np.add.at(quadrics, border_edges[:, k], border.transpose(1, 0, 2, 3))

    vertex_faces = [set() for _ in range(len(points))]
    for f, corners in enumerate(faces):
        for v in corners:
            vertex_faces[v].add(f)
    alive = np.ones(len(faces), bool)
    version = np.zeros(len(points), np.int64)

    def neighbours(v: int) -> set:
        around = set(faces[list(vertex_faces[v])].ravel().tolist()) if vertex_faces[v] else set()
        around.discard(v)
        return around

    def plan(u: int, v: int) -> tuple[float, np.ndarray]:
        """The cost of collapsing edge (u, v) and where its vertex goes (bind pose)."""
        m = blend(weights[u] + weights[v])
        q = np.einsum("pab,pbc,pdc->ad", m, quadrics[u] + quadrics[v], m)
        candidates = [points[u], points[v], (points[u] + points[v]) / 2.0]
        a = q[:3, :3]
        if abs(np.linalg.det(a)) > 1e-12 * max(np.abs(a).max(), 1e-30) ** 3:
            x = -np.linalg.solve(a, q[:3, 3])
            if np.linalg.norm(x - candidates[2]) < 2.0 * np.linalg.norm(points[u] - points[v]):  # not far off
                candidates.insert(0, x)
        costs = [np.append(x, 1.0) @ q @ np.append(x, 1.0) for x in candidates]
        best = int(np.argmin(costs))
        return float(costs[best]), candidates[best]

    def allowed(u: int, v: int, x: np.ndarray) -> bool:
        shared = vertex_faces[u] & vertex_faces[v]
        if not shared or len(neighbours(u) & neighbours(v)) != len(shared):
            return False
        for f in (vertex_faces[u] | vertex_faces[v]) - shared:
            old = points[faces[f]]
            new = np.where(((faces[f] == u) | (faces[f] == v))[:, None], x, old)
            n0 = np.cross(old[1] - old[0], old[2] - old[0])
            n1 = np.cross(new[1] - new[0], new[2] - new[0])
            l0, l1 = np.linalg.norm(n0), np.linalg.norm(n1)
            if l1 <= 1e-12 * max(l0, 1e-30) or np.dot(n0, n1) < FLIP_COSINE * l0 * l1:
                return False
        return True

    heap = []
    for u, v in np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1),
                          axis=0):
        cost, x = plan(int(u), int(v))
        heap.append((cost, int(u), int(v), 0, 0, tuple(x)))
    heapq.heapify(heap)
    count = len(faces)
    while count > target and heap:
        _, u, v, u_version, v_version, x = heapq.heappop(heap)
        x = np.array(x)
        if version[u] != u_version or version[v] != v_version or not allowed(u, v, x):
            continue
        for f in vertex_faces[u] & vertex_faces[v]:
            alive[f] = False
            for w in faces[f]:
                vertex_faces[w].discard(f)
            count -= 1
        for f in vertex_faces[u]:
            faces[f][faces[f] == u] = v
            vertex_faces[v].add(f)
        vertex_faces[u] = set()
        quadrics[v] += quadrics[u]
        weights[v] += weights[u]
        points[v] = x
        version[u] = -1
        version[v] += 1
        for w in neighbours(v):
            cost, y = plan(v, w)
            heapq.heappush(heap, (cost, v, w, version[v], version[w], tuple(y)))
    kept = faces[alive]
    used = np.unique(kept)
    remap = np.full(len(points), -1, np.int64)
    remap[used] = np.arange(len(used))
    return points[used].astype(np.float32), remap[kept].astype(np.int32)
