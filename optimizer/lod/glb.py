"""A LOD as glTF 2.0 binary (``NAME.glb``), written through pygltflib: one mesh of one
primitive (POSITION, NORMAL, TANGENT, TEXCOORD_0, indices), one pbrMetallicRoughness
material (the albedo as baseColorTexture, the normal map as normalTexture, both PNGs
inside the file), one node, one scene.

Conventions, converted from Panda3D's (optimizer.lod.export) to glTF's:
- Frame: glTF is +Y up, right-handed, in metres by convention; the LOD is in the source's
  own frame (Panda3D's default, +Z up) and units. Positions, normals and tangents are
  rotated by Panda3D's own conversion from the default coordinate system to Y-up
  (``Mat4.convertMat``: (x, y, z) -> (x, z, -y) for Z-up), a rotation, so the triangles'
  winding and the frames' handedness stay; no scale: the source's units stay.
- UVs: glTF's origin is the image's top-left, GL's (ours) its bottom-left: v -> 1 - v.
  The PNGs are the same files as NAME_albedo.png and NAME_normal.png, whose top row is
  GL's v = 1, i.e. glTF's v = 0.
- Tangent frame: glTF's bitangent is ``cross(normal, tangent.xyz) * tangent.w`` and its
  normal texture has green "up" in the image (+Y up, OpenGL's convention), i.e. along
  GL's +v. Our map is green along +v and our binormal column points along -v (Panda3D's
  shader generator negates it: optimizer.lod.geometry.tangent_frames), so
  ``w = sign(dot(cross(n, t), -binormal))``: +1 where the chart is not mirrored.
- Material: the LOD was fitted under Lambert (diffuse) plus ambient light, with no
  specular (shaders/surface/surface.frag), so metallic 0 and roughness 1, the most diffuse
  a core glTF material gets, and no specular layer: ``KHR_materials_specular`` with a
  specular factor of 0 and ``KHR_materials_ior`` with an index of 1 (a reflectance of
  ((n - 1) / (n + 1))^2 = 0 at normal incidence) each say so, so a viewer that reads
  either adds no Fresnel highlight the fit never saw. panda3d-gltf reads the index: with
  glTF's default 1.5 it gives the Panda3D material a specular of 0.04 at shininess 0,
  which the auto-shader adds everywhere a light reaches (measured: the .glb then drew
  the panda's black fur dark gray, 18.5 dB from the .bam). A viewer that reads neither
  shows a rough dielectric's faint 4% sheen. The albedo is sRGB, as
  glTF defines baseColorTexture; the normal map is linear data, as glTF defines
  normalTexture.

- Skin (``skin_extension``, through ``write_glb``'s ``extend`` hook; a static LOD's file
  is as without it): node 0 stays the mesh, a scene root at identity (glTF ignores a
  skinned mesh node's transform: the joints place its vertices), now with ``skin`` 0.
  Node 1, a second scene root named after the Character, holds the Character node's
  transform in the source; under it one node per joint, nested as the source's, each
  with its bind transform relative to its parent as translation, rotation and scale
  (animation channels target those; a matrix only where a joint's shears). A Panda3D
  matrix M (row vectors, p' = p M) becomes glTF's as the positions do, C^-1 M C with C
  the rotation above, and glTF's column-major 16 numbers of that matrix (column vectors)
  are Panda3D's row-major ones. ``inverseBindMatrices`` are the inverses of the joints'
  bind matrices (their net transforms, so the bind pose skins every vertex to where it
  is stored), last row exactly (0, 0, 0, 1) as glTF requires. JOINTS_0 is UNSIGNED_BYTE
  (UNSIGNED_SHORT past 255 joints), WEIGHTS_0 FLOAT, each row summing to 1. glTF skins
  every vertex; one that no joint moves (all weights 0 in the Skin) gets weight 1 on the
  Character node, which is then a joint too (its inverse bind the inverse of its
  transform), so it stays where it is, as in Panda3D. The skin names no ``skeleton``:
  panda3d-gltf would make that node a joint too, above the source's root joints, and the
  source's animations would no longer bind by name.
"""

from __future__ import annotations

import io
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np
import pygltflib as gl
from panda3d.core import (CS_yup_right, Geom, GeomVertexArrayFormat, GeomVertexFormat, GeomVertexReader,
                          GeomVertexWriter, InternalName, Mat4, NodePath, TextureAttrib, TextureStage,
                          getDefaultCoordinateSystem)
from PIL import Image

# glTF's enumerations (the spec's numbers; pygltflib names most of them).
FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, LINEAR_MIPMAP_LINEAR, REPEAT = 9729, 9987, 10497
TRIANGLES = 4
ALIGNMENT = 4  # every bufferView starts on a multiple of 4 bytes (the largest component here)


def to_gltf_frame() -> np.ndarray:
    """The 3x3 rotation (row vectors, as Panda3D multiplies: p' = p @ R) from Panda3D's
    default coordinate system to glTF's Y-up right-handed one."""
    matrix = Mat4.convertMat(getDefaultCoordinateSystem(), CS_yup_right)
    return np.array([[matrix.getCell(r, c) for c in range(3)] for r in range(3)], np.float64)


def png_bytes(rgb8: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image, top row first, as PNG bytes."""
    stream = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb8)).save(stream, format="PNG")
    return stream.getvalue()


class GlbBuilder:
    """A glTF document and its one binary buffer, built up together: ``accessor`` and
    ``image`` append data (each bufferView aligned) and return the new index."""

    def __init__(self, generator: str):
        self.document = gl.GLTF2(asset=gl.Asset(version="2.0", generator=generator))
        self.binary = bytearray()

    def _view(self, data: bytes, target: int | None) -> int:
        self.binary += b"\0" * (-len(self.binary) % ALIGNMENT)
        self.document.bufferViews.append(gl.BufferView(buffer=0, byteOffset=len(self.binary), byteLength=len(data),
                                                       target=target))
        self.binary += data
        return len(self.document.bufferViews) - 1

    def accessor(self, values: np.ndarray, accessor_type: str, component_type: int, target: int | None = ARRAY_BUFFER,
                 bounds: bool = False, normalized: bool = False) -> int:
        """An accessor over ``values`` ((N, k) or (N,), already of the component type's
        dtype), in a bufferView of its own; ``bounds``: with min and max (POSITION must)."""
        values = np.ascontiguousarray(values)
        view = self._view(values.tobytes(), target)
        flat = values.reshape(len(values), -1)
        accessor = gl.Accessor(bufferView=view, componentType=component_type, count=len(values), type=accessor_type,
                               normalized=normalized or None)
        if bounds:
            accessor.min, accessor.max = flat.min(axis=0).tolist(), flat.max(axis=0).tolist()
        self.document.accessors.append(accessor)
        return len(self.document.accessors) - 1

    def image(self, png: bytes, name: str) -> int:
        view = self._view(png, None)
        self.document.images.append(gl.Image(bufferView=view, mimeType="image/png", name=name))
        return len(self.document.images) - 1

    def glb(self) -> bytes:
        """The whole .glb file."""
        self.binary += b"\0" * (-len(self.binary) % ALIGNMENT)
        self.document.buffers = [gl.Buffer(byteLength=len(self.binary))]
        self.document.set_binary_blob(bytes(self.binary))
        return b"".join(self.document.save_to_bytes())


def gltf_vertices(positions, normals, tangents, binormals, uvs) -> dict[str, np.ndarray]:
    """The LOD's vertex arrays in glTF's frame and conventions (module docs): float32
    POSITION, unit NORMAL, unit TANGENT xyz with w = +-1, TEXCOORD_0 with v flipped."""
    rotation = to_gltf_frame()
    normals, tangents, binormals = (np.asarray(a, np.float64) for a in (normals, tangents, binormals))
    w = np.where(np.sum(np.cross(normals, tangents) * -binormals, axis=1) < 0.0, -1.0, 1.0)
    normals = _unit(normals @ rotation, fallback=np.array([0.0, 1.0, 0.0]))
    tangents = tangents @ rotation
    tangents -= normals * np.sum(normals * tangents, axis=1, keepdims=True)  # glTF's frame is orthonormal
    tangents = _unit(tangents, fallback=None, normals=normals)
    uvs = np.asarray(uvs, np.float64)
    return {"POSITION": (np.asarray(positions, np.float64) @ rotation).astype(np.float32),
            "NORMAL": normals.astype(np.float32),
            "TANGENT": np.concatenate([tangents, w[:, None]], axis=1).astype(np.float32),
            "TEXCOORD_0": np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1).astype(np.float32)}


def write_glb(path: Path, positions, triangles, normals, tangents, binormals, uvs, albedo_png: bytes,
              normal_png: bytes, name: str, write: Callable[[Path, Callable], None],
              extend: Callable[[GlbBuilder], None] | None = None) -> None:
    """Write the LOD (arrays as optimizer.lod.export.LodMesh holds them: Panda3D's frame and
    conventions) as ``path``, a .glb, through ``write(path, write_stream)`` (the caller's
    atomic writer). ``extend(builder)`` may add to the document before it is packed: the
    mesh is ``builder.document.meshes[0]``, its node ``nodes[0]`` (a skin adds JOINTS_0 and
    WEIGHTS_0 to ``meshes[0].primitives[0].attributes``, its joints and ``skins``)."""
    builder = GlbBuilder(f"panda3d-sge {_version()}")
    document = builder.document
    vertices = gltf_vertices(positions, normals, tangents, binormals, uvs)
    attributes = gl.Attributes()
    for key, values in vertices.items():
        setattr(attributes, key, builder.accessor(values, "VEC2" if values.shape[1] == 2 else f"VEC{values.shape[1]}",
                                                  FLOAT, bounds=key == "POSITION"))
    triangles = np.asarray(triangles)
    index_type = (np.uint16, UNSIGNED_SHORT) if len(vertices["POSITION"]) <= 65535 else (np.uint32, UNSIGNED_INT)
    indices = builder.accessor(triangles.reshape(-1).astype(index_type[0]), "SCALAR", index_type[1],
                               target=ELEMENT_ARRAY_BUFFER)
    document.samplers.append(gl.Sampler(magFilter=LINEAR, minFilter=LINEAR_MIPMAP_LINEAR, wrapS=REPEAT, wrapT=REPEAT))
    for png, label in ((albedo_png, "albedo"), (normal_png, "normal")):
        document.textures.append(gl.Texture(sampler=0, source=builder.image(png, f"{name}_{label}")))
    document.materials.append(gl.Material(
        name=name,
        pbrMetallicRoughness=gl.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0,
                                                     roughnessFactor=1.0, baseColorTexture=gl.TextureInfo(index=0)),
        normalTexture=gl.NormalMaterialTexture(index=1),
        extensions={"KHR_materials_specular": {"specularFactor": 0.0}, "KHR_materials_ior": {"ior": 1.0}}))
    document.extensionsUsed = ["KHR_materials_specular", "KHR_materials_ior"]
    document.meshes.append(gl.Mesh(name=name, primitives=[gl.Primitive(attributes=attributes, indices=indices,
                                                                       material=0, mode=TRIANGLES)]))
    document.nodes.append(gl.Node(name=name, mesh=0))
    document.scenes.append(gl.Scene(nodes=[0]))
    document.scene = 0
    if extend is not None:
        extend(builder)
    data = builder.glb()
    write(path, lambda stream: stream.write(data))


def gltf_matrices(matrices: np.ndarray) -> np.ndarray:
    """(..., 4, 4) Panda3D matrices (row vectors, the default coordinate system) as
    glTF's: the same transforms in glTF's frame, C^-1 M C (C: ``to_gltf_frame``), still
    in row-vector form, whose row-major order is glTF's column-major one."""
    frame = np.eye(4)
    frame[:3, :3] = to_gltf_frame()
    return frame.T @ np.asarray(matrices, np.float64) @ frame


def trs(matrix: np.ndarray) -> dict | None:
    """A glTF-frame matrix (row vectors, ``gltf_matrices``) as a node's translation,
    rotation (unit quaternion x, y, z, w) and scale; None where it shears (no TRS holds it)."""
    linear = np.asarray(matrix, np.float64)[:3, :3].T  # column vectors: linear = R @ diag(scale)
    scale = np.linalg.norm(linear, axis=0)
    if np.any(scale < 1e-12):
        return None
    if np.linalg.det(linear) < 0:
        scale[0] = -scale[0]
    rotation = linear / scale
    if np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-5:
        return None
    return {"translation": [float(v) for v in matrix[3, :3]], "rotation": _quaternion(rotation),
            "scale": [float(v) for v in scale]}


def _quaternion(rotation: np.ndarray) -> list[float]:
    """A 3x3 rotation (column vectors) as a unit quaternion (x, y, z, w), w >= 0."""
    m = rotation
    trace = np.trace(m)
    if trace > 0:
        k = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / k, (m[0, 2] - m[2, 0]) / k, (m[1, 0] - m[0, 1]) / k, 0.25 * k]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k_ = (i + 1) % 3, (i + 2) % 3
        k = 2.0 * np.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k_, k_], 1e-300))
        q = [0.0, 0.0, 0.0, (m[k_, j] - m[j, k_]) / k]
        q[i], q[j], q[k_] = 0.25 * k, (m[j, i] + m[i, j]) / k, (m[k_, i] + m[i, k_]) / k
    q = np.array(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return [float(v) for v in q]


def skin_extension(skin) -> Callable[[GlbBuilder], None]:
    """``write_glb``'s ``extend`` for ``skin`` (optimizer.lod.skin.Skin, the LOD's vertices'
    influences): the joints, the skin and JOINTS_0/WEIGHTS_0 (module docs)."""

    def extend(builder: GlbBuilder) -> None:
        document = builder.document
        count = len(skin.joint_names)
        weights = np.asarray(skin.weights, np.float64)
        joints = np.asarray(skin.joints, np.int64)
        total = weights.sum(axis=1)
        still = total <= 0
        character_joint = bool(still.any())  # the Character node takes the vertices no joint moves
        weights = np.where(still[:, None], [[1.0, 0.0, 0.0, 0.0]], weights / np.where(still, 1.0, total)[:, None])
        joints = np.where(still[:, None], [[count, 0, 0, 0]], joints)
        joints = np.where(weights > 0, joints, 0)
        weights = weights.astype(np.float32)
        # The heaviest weight takes float32's rounding, so each row sums to 1 as glTF asks.
        weights[:, 0] = (1.0 - weights[:, 1:].astype(np.float64).sum(axis=1)).astype(np.float32)

        character = len(document.nodes)
        character_matrix = gltf_matrices(skin.character_matrix)
        document.nodes.append(_transform_node(skin.character_name, character_matrix))
        first = len(document.nodes)
        for joint_name, parent, local in zip(skin.joint_names, skin.parents.tolist(),
                                             gltf_matrices(skin.local_matrices())):
            document.nodes.append(_transform_node(joint_name, local))
            document.nodes[character if parent < 0 else first + parent].children.append(len(document.nodes) - 1)
        nets = gltf_matrices(skin.bind_matrices)
        joint_nodes = list(range(first, first + count))
        if character_joint:
            nets = np.concatenate([nets, character_matrix[None]])
            joint_nodes.append(character)
        inverse = np.linalg.inv(nets)
        inverse[:, :3, 3], inverse[:, 3, 3] = 0.0, 1.0  # glTF's column-major last row, exactly
        document.skins.append(gl.Skin(name=skin.character_name, joints=joint_nodes,
                                      inverseBindMatrices=builder.accessor(inverse.reshape(-1, 16).astype(np.float32),
                                                                           "MAT4", FLOAT, target=None)))
        index_type = (np.uint8, UNSIGNED_BYTE) if len(joint_nodes) <= 256 else (np.uint16, UNSIGNED_SHORT)
        attributes = document.meshes[0].primitives[0].attributes
        attributes.JOINTS_0 = builder.accessor(joints.astype(index_type[0]), "VEC4", index_type[1])
        attributes.WEIGHTS_0 = builder.accessor(weights, "VEC4", FLOAT)
        document.nodes[0].skin = 0
        document.scenes[0].nodes.append(character)

    return extend


def _transform_node(name: str, matrix: np.ndarray) -> gl.Node:
    """A node at ``matrix`` (glTF's frame, row vectors): TRS where it holds one, left out
    where it is the identity."""
    node = gl.Node(name=name, children=[])
    if np.allclose(matrix, np.eye(4), rtol=0.0, atol=1e-12):
        return node
    parts = trs(matrix)
    if parts is None:
        node.matrix = [float(v) for v in np.asarray(matrix, np.float64).ravel()]
    else:
        node.translation, node.rotation, node.scale = parts["translation"], parts["rotation"], parts["scale"]
    return node


def add_binormals(model: NodePath, sign: float = 1.0) -> int:
    """Make a .glb that panda3d-gltf loaded draw its normal map under Panda3D 1.10's
    auto-shader: every Geom with a glTF tangent (4 components, w the handedness) and a
    normal-map stage gets the tangent and binormal columns of that stage's texcoord set.

    panda3d-gltf names the UV set ``texcoord.0`` and loads TANGENT as a 4-component
    ``tangent`` column with no binormal; the shader generator looks for ``tangent.0`` and
    ``binormal.0`` (the stage's set), reads no tangent.w, and without them bends every
    normal to nothing (the surface gets only ambient light). The binormal is
    ``-cross(normal, tangent.xyz) * w``: glTF's bitangent (+v) negated, because the shader
    generator bends along the negated binormal (optimizer.lod.geometry.tangent_frames). ``sign``
    -1 flips it (tests/glb_script.py measures that mistake). Returns the Geoms changed."""
    changed = 0
    for geom_path in model.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for index in range(node.getNumGeoms()):
            data = node.getGeom(index).getVertexData()
            state = geom_path.getNetState().compose(node.getGeomState(index))
            textures = state.getAttrib(TextureAttrib)
            stages = [textures.getOnStage(k) for k in range(textures.getNumOnStages())] if textures else []
            normal_stages = [stage for stage in stages if stage.getMode() == TextureStage.M_normal]
            tangent_column = data.getFormat().getColumn(InternalName.getTangent())
            if not normal_stages or tangent_column is None or tangent_column.getNumComponents() != 4 or \
                    not data.getFormat().hasColumn(InternalName.getNormal()):
                continue
            texcoord = normal_stages[0].getTexcoordName().getName()  # "texcoord" or "texcoord.NAME"
            uv_set = texcoord.split(".", 1)[1] if "." in texcoord else ""
            tangent_name, binormal_name = InternalName.getTangentName(uv_set), InternalName.getBinormalName(uv_set)
            normal_reader = GeomVertexReader(data, InternalName.getNormal())
            tangent_reader = GeomVertexReader(data, InternalName.getTangent())
            rows = data.getNumRows()
            normals = np.array([tuple(normal_reader.getData3()) for _ in range(rows)], np.float64).reshape(-1, 3)
            tangents = np.array([tuple(tangent_reader.getData4()) for _ in range(rows)], np.float64).reshape(-1, 4)
            binormals = -sign * np.cross(normals, tangents[:, :3]) * np.where(tangents[:, 3:] < 0.0, -1.0, 1.0)
            vertex_format = GeomVertexFormat(data.getFormat())
            array = GeomVertexArrayFormat()
            for name in (tangent_name, binormal_name):
                if not vertex_format.hasColumn(name):
                    array.addColumn(name, 3, Geom.NT_float32, Geom.C_vector)
            if array.getNumColumns():
                vertex_format.addArray(array)
            data = node.modifyGeom(index).modifyVertexData()
            data.setFormat(GeomVertexFormat.registerFormat(vertex_format))
            for name, values in ((tangent_name, tangents[:, :3]), (binormal_name, binormals)):
                writer = GeomVertexWriter(data, name)
                for row in values.tolist():
                    writer.setData3(*row)
            changed += 1
    return changed


def _unit(vectors: np.ndarray, fallback, normals: np.ndarray | None = None) -> np.ndarray:
    """Rows scaled to unit length; a zero row becomes ``fallback``, or with ``normals``
    any unit vector perpendicular to its normal (glTF requires unit tangents everywhere,
    also where a degenerate UV triangle gave none)."""
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    bad = length[:, 0] < 1e-9
    out = vectors / np.where(bad[:, None], 1.0, length)
    if bad.any():
        if normals is None:
            out[bad] = fallback
        else:
            n = normals[bad]
            axis = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
            perpendicular = np.cross(n, axis)
            out[bad] = perpendicular / np.linalg.norm(perpendicular, axis=1, keepdims=True)
    return out


def _version() -> str:
    try:
        return version("panda3d-sge")
    except PackageNotFoundError:
        return "dev"
