"""Skinned sources: the joints a Character's vertices follow, read from the source, and
carried over to its LOD, so the LOD plays the source's animations.

    reader = SkinReader(model)                  # source.load_source does this per Geom
    skin = source_mesh.skin                     # None for a source without joints
    lod_skin = transfer_weights(skin, source_mesh.positions, source_mesh.triangles, lod_positions)

``Skin`` is the one place the skeleton and the per-vertex influences live, for every
exporter (Panda3D .egg/.bam here; glTF's skin reads the same fields: its inverse bind
matrices are ``inverse(bind_matrices)``, transposed for glTF's column vectors).

Panda3D skins a vertex as p' = sum_j w_j p inverse(B_j) P_j (row vectors, p' = p M), where
B_j is joint j's net transform in the bind pose and P_j the posed one, both in the
Character's frame; the source is flattened in its bind pose (the vertex data as loaded,
before any animation), so the LOD's optimisation runs in the bind pose too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from panda3d.core import CharacterJoint, Geom, GeomVertexData, InternalName, JointVertexTransform, NodePath
from .geometry import row_dot, weighted_rows

MAX_INFLUENCES = 4  # what Panda3D's egg loader, glTF and most engines' skinning take per vertex
_INDEX_TYPES = {Geom.NT_uint8: np.uint8, Geom.NT_uint16: np.uint16, Geom.NT_uint32: np.uint32}


@dataclass
class Skin:
    """A skeleton and every vertex's joint influences.

    character_name: the Character node's name (animations are made for it).
    joint_names (J,); parents (J,) int32: each joint's parent joint, -1 for a root; a
        parent always comes before its children.
    bind_matrices (J, 4, 4) float64: each joint's net transform in the bind pose, in the
        source's frame (the model root's; Panda3D's row-vector convention, p' = p M).
    character_matrix (4, 4) float64: the Character node's transform in the source's frame
        (the frame the root joints' transforms are relative to).
    joints (V, 4) int32 and weights (V, 4) float32: up to four influences per vertex,
        heaviest first, weights summing to 1; a vertex no joint moves has all weights 0
        (and joints 0). Unused slots have weight 0.
    """

    character_name: str
    joint_names: list[str]
    parents: np.ndarray
    bind_matrices: np.ndarray
    character_matrix: np.ndarray
    joints: np.ndarray
    weights: np.ndarray

    def local_matrices(self) -> np.ndarray:
        """(J, 4, 4): each joint's bind transform relative to its parent joint (to the
        Character for a root): what a joint's default value is, and an egg <Joint> holds."""
        parent_net = np.where(self.parents[:, None, None] >= 0, self.bind_matrices[np.maximum(self.parents, 0)],
                              self.character_matrix)
        return self.bind_matrices @ np.linalg.inv(parent_net)

    def with_influences(self, joints: np.ndarray, weights: np.ndarray) -> "Skin":
        """The same skeleton with other vertices' influences."""
        return dataclasses.replace(self, joints=np.asarray(joints, np.int32), weights=np.asarray(weights, np.float32))

    def check(self, vertex_count: int) -> None:
        """Raise ValueError unless the influences fit ``vertex_count`` vertices and the skeleton."""
        count = len(self.joint_names)
        if self.parents.shape != (count,) or self.bind_matrices.shape != (count, 4, 4):
            raise ValueError(f"a skeleton of {count} joints needs ({count},) parents and ({count}, 4, 4) bind matrices")
        if np.any(self.parents >= np.arange(count)):
            raise ValueError("every joint's parent must come before it")
        for label, values in (("joints", self.joints), ("weights", self.weights)):
            if values.shape != (vertex_count, MAX_INFLUENCES):
                raise ValueError(f"the skin's {label} must be ({vertex_count}, {MAX_INFLUENCES}), got {values.shape}")
        if count == 0 or self.joints.min() < 0 or self.joints.max() >= count:
            raise ValueError(f"the skin's joint indices run outside its {count} joints")
        if not np.all(np.isfinite(self.weights)) or self.weights.min() < 0:
            raise ValueError("the skin's weights must be finite and not negative")


def skinned_positions(skin: Skin, positions: np.ndarray, posed_matrices: np.ndarray) -> np.ndarray:
    """``positions`` (V, 3) in the source's frame, bind pose, moved by linear blend
    skinning to joints whose net transforms (in the source's frame) are ``posed_matrices``
    (J, 4, 4); a vertex with no influence stays."""
    moving = np.linalg.inv(skin.bind_matrices) @ posed_matrices  # (J, 4, 4)
    points = np.concatenate([np.asarray(positions, np.float64), np.ones((len(positions), 1))], axis=1)
    # Each influence's matrix applied (row vectors, p M), then blended by weight.
    per_influence = np.stack([(points[:, :, None] * moving[skin.joints[:, k]]).sum(axis=1)
                              for k in range(skin.joints.shape[1])], axis=1)          # (V, K, 4)
    moved = weighted_rows(skin.weights.astype(np.float64), per_influence)
    still = skin.weights.sum(axis=1) == 0
    moved[still] = points[still]
    return moved[:, :3]


class SkinReader:
    """Reads each Geom's influences while the source is flattened (``source._flatten``),
    then hands back one ``Skin`` (or None where no vertex follows a joint)."""

    def __init__(self, model: NodePath):
        self.model = model
        self.parts: list[tuple[int, np.ndarray, np.ndarray] | None] = []  # per Geom: (rows, joints, weights)
        self.characters: dict[int, tuple] = {}  # Character address -> (node, joint index by address, skeleton)

    def add(self, data: GeomVertexData, rows: np.ndarray) -> None:
        """The influences of vertex ``rows`` of ``data`` (one Geom's used vertices, in
        the order the flattened mesh takes them)."""
        table = data.getTransformBlendTable()
        if table is None or not data.getFormat().hasColumn(InternalName.getTransformBlend()):
            self.parts.append((len(rows), None, None))
            return
        blend_joints = np.zeros((table.getNumBlends(), MAX_INFLUENCES), np.int32)
        blend_weights = np.zeros((table.getNumBlends(), MAX_INFLUENCES), np.float32)
        for b in range(table.getNumBlends()):
            blend = table.getBlend(b)
            influences = []
            for t in range(blend.getNumTransforms()):
                transform = blend.getTransform(t)
                # Other transforms (a UserVertexTransform a program drives) follow no joint,
                # and neither does a joint's transform whose Character was not kept (a .bam
                # written from a Character's bare GeomNode).
                joint = transform.getJoint() if isinstance(transform, JointVertexTransform) else None
                if joint is not None and joint.getCharacter() is not None and blend.getWeight(t) > 0:
                    influences.append((self._joint_index(joint), blend.getWeight(t)))
            influences.sort(key=lambda pair: (-pair[1], pair[0]))
            influences = influences[:MAX_INFLUENCES]
            total = sum(weight for _, weight in influences)
            for k, (joint, weight) in enumerate(influences):
                blend_joints[b, k], blend_weights[b, k] = joint, weight / total
        blend_index = _index_column(data, InternalName.getTransformBlend())[rows]
        self.parts.append((len(rows), blend_joints[blend_index], blend_weights[blend_index]))

    def skin(self) -> tuple[Skin | None, str | None]:
        """(the Skin of every vertex added, in order; a note) — (None, None) when no vertex
        follows a joint; (None, a line saying why) for joints of more than one Character,
        which one LOD cannot follow."""
        if not self.characters:
            return None, None
        if len(self.characters) > 1:
            names = ", ".join(sorted(node.getName() for node, _, _ in self.characters.values()))
            return None, (f"the model's vertices follow the joints of {len(self.characters)} Characters ({names}); "
                          f"the LOD is written static (one skinned Character per LOD is supported)")
        [(node, _, (names, parents, nets))] = self.characters.values()
        character_matrix = _character_matrix(self.model, node)
        joints, weights = [], []
        for count, part_joints, part_weights in self.parts:
            joints.append(part_joints if part_joints is not None else np.zeros((count, MAX_INFLUENCES), np.int32))
            weights.append(part_weights if part_weights is not None else np.zeros((count, MAX_INFLUENCES), np.float32))
        return Skin(character_name=node.getName(), joint_names=names, parents=np.array(parents, np.int32),
                    bind_matrices=np.array(nets) @ character_matrix, character_matrix=character_matrix,
                    joints=np.concatenate(joints), weights=np.concatenate(weights)), None

    def _joint_index(self, joint: CharacterJoint) -> int:
        character = joint.getCharacter()
        key = character.this
        if key not in self.characters:
            self.characters[key] = (character, *_skeleton(character))
        _, index, _ = self.characters[key]
        return index[joint.this]


def _skeleton(character) -> tuple[dict[int, int], tuple[list[str], list[int], list[np.ndarray]]]:
    """Every CharacterJoint of ``character``'s bundle, parents first: (index by the joint's
    address, (names, parent indices, net bind matrices in the Character's frame)). The
    bind pose is the joints' default values (what Panda3D inverts into each joint's
    initial net transform), not their current pose, which an animation may have moved."""
    index: dict[int, int] = {}
    names: list[str] = []
    parents: list[int] = []
    nets: list[np.ndarray] = []

    def visit(part, parent: int) -> None:
        if isinstance(part, CharacterJoint):
            local = _matrix(part.getDefaultValue())
            index[part.this] = len(names)
            nets.append(local @ nets[parent] if parent >= 0 else local)
            names.append(part.getName())
            parents.append(parent)
            parent = index[part.this]
        for i in range(part.getNumChildren()):
            visit(part.getChild(i), parent)

    for b in range(character.getNumBundles()):
        visit(character.getBundle(b), -1)
    return index, (names, parents, nets)


def _character_matrix(model: NodePath, character) -> np.ndarray:
    """The Character node's transform in ``model``'s frame."""
    for path in ([model] if model.node() == character else []) + list(model.findAllMatches("**/+Character")):
        if path.node() == character:
            return _matrix(path.getMat(model))
    return np.eye(4)


def _matrix(mat) -> np.ndarray:
    return np.array([list(mat.getRow(i)) for i in range(4)], np.float64)


def _index_column(data: GeomVertexData, name) -> np.ndarray:
    """One single-integer column (e.g. transform_blend) as int64 rows, read from the
    array's bytes (the column's own stride, start and integer type)."""
    vertex_format = data.getFormat()
    array_index = vertex_format.getArrayWith(name)
    column = vertex_format.getArray(array_index).getColumn(name)
    stride = vertex_format.getArray(array_index).getStride()
    raw = np.frombuffer(memoryview(data.getArray(array_index)), np.uint8).reshape(-1, stride)
    dtype = _INDEX_TYPES[column.getNumericType()]
    start = column.getStart()
    return np.ascontiguousarray(raw[:, start:start + np.dtype(dtype).itemsize]).view(dtype)[:, 0].astype(np.int64)


# --- carrying the influences over to a LOD ----------------------------------------------
NORMAL_REACH = 0.05   # in source bounding radii: how far a better-facing surface may lie (transfer_weights)
NEAREST_CHUNK = 256  # LOD vertices per block of the nearest-triangle search
FIRST_GUESSES = 8    # triangles (by centroid) whose exact distance bounds the search


def transfer_weights(skin: Skin, source_positions: np.ndarray, source_triangles: np.ndarray,
                     positions: np.ndarray, triangles: np.ndarray | None = None) -> Skin:
    """The skin of a LOD whose vertices (bind pose, the source's frame) are ``positions``:
    each vertex takes the nearest point of the source's surface, and there the blend of
    that triangle's corners' influences by their barycentric weights (summed per joint);
    the four heaviest joints are kept and renormalised. A vertex whose nearest point lies
    on geometry no joint moves stays unmoved (weights 0); a corner of such geometry
    contributes nothing to a mixed triangle's blend.

    With the LOD's ``triangles`` (over ``positions``), "nearest" also weighs the normals:
    squared distance plus (NORMAL_REACH x the source's bounding radius)^2 x (1 - cos) of
    the angle between the LOD vertex's normal and the source triangle's, so a vertex by
    an armpit or between the legs takes the side it faces rather than the surface across
    the gap (measured on the posed panda: nearest by distance alone fell 0.3 dB further)."""
    positions = np.asarray(positions, np.float64)
    source_positions = np.asarray(source_positions, np.float64)
    normals = None
    if triangles is not None:
        from .geometry import vertex_normals
        normals = vertex_normals(positions, np.asarray(triangles, np.int64)).astype(np.float64)
    center = (source_positions.min(axis=0) + source_positions.max(axis=0)) / 2.0
    radius = float(np.linalg.norm(source_positions - center, axis=1).max()) if len(source_positions) else 0.0
    triangle, barycentric = nearest_surface_points(source_positions, np.asarray(source_triangles, np.int64), positions,
                                                   normals, NORMAL_REACH * radius)
    corners = np.asarray(source_triangles, np.int64)[triangle]                     # (V, 3)
    corner_joints = skin.joints[corners].reshape(len(positions), -1)              # (V, 12)
    corner_weights = (skin.weights[corners] * barycentric[:, :, None]).reshape(len(positions), -1)
    dense = np.zeros((len(positions), len(skin.joint_names)), np.float64)
    np.add.at(dense, (np.repeat(np.arange(len(positions)), corner_joints.shape[1]), corner_joints.ravel()),
              corner_weights.ravel())
    # Heaviest first, ties by joint index, so the result does not depend on the sort's whims.
    order = np.lexsort((np.broadcast_to(np.arange(dense.shape[1]), dense.shape), -dense), axis=1)[:, :MAX_INFLUENCES]
    weights = np.take_along_axis(dense, order, axis=1)
    total = weights.sum(axis=1, keepdims=True)
    moved = total[:, 0] > 1e-12
    weights = np.where(moved[:, None], weights / np.where(moved, total[:, 0], 1.0)[:, None], 0.0)
    joints = np.where(weights > 0, order, 0)
    return skin.with_influences(joints, weights)


def nearest_surface_points(vertices: np.ndarray, triangles: np.ndarray, points: np.ndarray,
                           normals: np.ndarray | None = None,
                           normal_reach: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``points`` (P, 3): the triangle of the mesh (``vertices``, ``triangles``)
    nearest to it (ties: the lowest index) and the barycentric coordinates (P, 3) of the
    nearest point on it. With ``normals`` (P, 3, unit), "nearest" is the least squared
    distance + normal_reach^2 (1 - cos), cos between the point's normal and the
    triangle's. Exact: a triangle is measured only when the distance to its centroid less
    its circumradius about the centroid could beat the best found so far (either cost is
    at least the squared distance)."""
    corners = vertices[triangles]                                                  # (T, 3, 3)
    centroids = corners.mean(axis=1)
    reach = np.linalg.norm(corners - centroids[:, None], axis=2).max(axis=1)       # (T,)
    face_normals = None
    if normals is not None:
        face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        face_normals /= np.maximum(np.linalg.norm(face_normals, axis=1, keepdims=True), 1e-300)

    def cost(rows: np.ndarray, candidates: np.ndarray, squared: np.ndarray) -> np.ndarray:
        if face_normals is None:
            return squared
        cosine = row_dot(normals[start + rows], face_normals[candidates])
        return squared + normal_reach ** 2 * (1.0 - cosine)

    found_triangle = np.zeros(len(points), np.int64)
    found_barycentric = np.zeros((len(points), 3))
    guesses = min(FIRST_GUESSES, len(triangles))
    for start in range(0, len(points), NEAREST_CHUNK):
        chunk = points[start:start + NEAREST_CHUNK]
        to_centroid = np.linalg.norm(chunk[:, None, :] - centroids[None], axis=2)   # (C, T)
        guess = np.argpartition(to_centroid, guesses - 1, axis=1)[:, :guesses]
        rows = np.repeat(np.arange(len(chunk)), guesses)
        best = np.sqrt(cost(rows, guess.ravel(), _point_triangle(chunk[rows], corners[guess.ravel()])[0])
                       .reshape(len(chunk), guesses).min(axis=1))
        rows, candidates = np.nonzero(to_centroid - reach[None] <= best[:, None] * (1 + 1e-9) + 1e-12)
        distance, barycentric = _point_triangle(chunk[rows], corners[candidates])
        distance = cost(rows, candidates, distance)
        # The nearest candidate per point, ties to the lowest triangle index (rows are sorted).
        order = np.lexsort((candidates, distance, rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        found_triangle[start + rows[first]] = candidates[first]
        found_barycentric[start + rows[first]] = barycentric[first]
    return found_triangle, found_barycentric


def _point_triangle(points: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance from each point (N, 3) to its triangle (N, 3, 3) and the
    barycentrics (N, 3) of the nearest point (Ericson, Real-Time Collision Detection
    5.1.5: by the Voronoi region of the triangle the point projects into)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = row_dot(ab, ap), row_dot(ac, ap)
    bp = points - b
    d3, d4 = row_dot(ab, bp), row_dot(ac, bp)
    cp = points - c
    d5, d6 = row_dot(ab, cp), row_dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def safe(numerator, denominator):
        return numerator / np.where(np.abs(denominator) > 1e-300, denominator, 1.0)

    # Inside the face by default, then each edge and corner region overrides, as in the book's
    # early returns taken in reverse order of precedence.
    denominator = va + vb + vc
    v, w = safe(vb, denominator), safe(vc, denominator)
    bary = np.stack([1 - v - w, v, w], axis=1)
    regions = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),  # edge bc
         lambda t: np.stack([np.zeros_like(t), 1 - t, t], 1), safe(d4 - d3, (d4 - d3) + (d5 - d6))),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda t: np.stack([1 - t, np.zeros_like(t), t], 1), safe(d2, d2 - d6)),  # ac
        ((d6 >= 0) & (d5 <= d6), lambda t: np.tile([0.0, 0.0, 1.0], (len(t), 1)), d6),  # corner c
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda t: np.stack([1 - t, t, np.zeros_like(t)], 1), safe(d1, d1 - d3)),  # ab
        ((d3 >= 0) & (d4 <= d3), lambda t: np.tile([0.0, 1.0, 0.0], (len(t), 1)), d3),  # corner b
        ((d1 <= 0) & (d2 <= 0), lambda t: np.tile([1.0, 0.0, 0.0], (len(t), 1)), d1),   # corner a
    ]
    for inside, make, parameter in regions:
        bary = np.where(inside[:, None], make(parameter), bary)
    nearest = weighted_rows(bary, corners)
    return np.square(points - nearest).sum(axis=1), bary

