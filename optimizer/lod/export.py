"""Exporting an optimised LOD for games and tools: the albedo and normal maps as PNG
(``NAME_albedo.png``, ``NAME_normal.png``), the mesh as ``.bam`` and ``.egg`` (Panda3D), as
``.obj`` + ``.mtl`` and as glTF 2.0 binary ``.glb`` (everything else; optimizer.lod.glb has
its conversions to glTF's frame and conventions).

The ``.bam`` and the ``.glb`` hold their textures' pixels (one file is the whole asset:
copy it anywhere).
The ``.egg`` and ``.mtl`` name the PNGs by bare relative file names, so the directory can
be moved or renamed as a whole: Panda3D looks a model's relative texture paths up in the
model's own directory, other tools in the ``.mtl``'s.

Conventions, the same in every file:
- The normal map is tangent space with green along +v (OpenGL's convention, as Blender
  and glTF read it). The .bam and .egg carry each vertex's frame, with the binormal
  column along -v: Panda3D's shader generator bends normals along the negated binormal
  (optimizer.lod.geometry.tangent_frames), so the auto-shader reads the map as our renderer does.
- The albedo holds sRGB-encoded values and its texture is not typed sRGB (F_rgb8), like
  Panda3D's own models: on Panda3D's default pipeline the auto-shader lights the stored
  values, as it lights the source model's. With ``framebuffer-srgb`` and the texture set
  to ``Texture.F_srgb`` it lights linear values, which is what our renderer does.

A LOD of a skinned source (``skin``: optimizer.lod.skin.Skin) is a Character in the .bam and
.egg: the .egg holds the source's joints as ``<Joint>`` groups under a ``<Dart>`` group,
each with its bind transform and its vertices' memberships, and the .bam is that egg tree
built by Panda3D's own egg loader (the way every Panda3D character is built), with the
textures of the static .bam put on it. The .glb carries the same skin as glTF's (joint
nodes, a skin with inverse bind matrices, JOINTS_0/WEIGHTS_0: optimizer.lod.glb). The .obj
stays a static mesh in the bind pose.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from panda3d.core import (
    BamFile,
    BamWriter,
    Filename,
    Geom,
    GeomNode,
    LMatrix4d,
    GeomTriangles,
    GeomVertexData,
    GeomVertexFormat,
    Material,
    MaterialAttrib,
    ModelRoot,
    NodePath,
    RenderState,
    SamplerState,
    Texture,
    TextureAttrib,
    TextureStage,
    getDefaultCoordinateSystem,
    loadPrcFileData,
    unloadPrcFile,
)
from panda3d.egg import (EggData, EggGroup, EggMaterial, EggPolygon, EggTexture, EggVertex, EggVertexPool, EggVertexUV,
                         loadEggData)

from ..errors import SgeError
from .glb import png_bytes, skin_extension, write_glb
from ..images import atomic_write, default_mode, linear_to_srgb8
from ..surface.mesh import float_vertex_format
from .skin import Skin

ALBEDO_SUFFIX = "_albedo.png"
NORMAL_SUFFIX = "_normal.png"


def texture_files(name: str) -> tuple[str, str]:
    """The PNG file names of the LOD called ``name``: (albedo, normal map)."""
    return name + ALBEDO_SUFFIX, name + NORMAL_SUFFIX


@dataclass(frozen=True)
class LodMesh:
    """The arrays of one LOD, checked: float32 (V, 3) positions, normals, tangents and
    binormals, (V, 2) uvs, int64 (T, 3) triangles."""

    positions: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    binormals: np.ndarray
    uvs: np.ndarray

    @classmethod
    def checked(cls, positions, triangles, normals, tangents, binormals, uvs) -> "LodMesh":
        positions = np.asarray(positions, np.float32)
        if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
            raise SgeError(f"the LOD needs (V, 3) vertex positions, got shape {positions.shape}")
        count = len(positions)
        triangles = np.asarray(triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0 \
                or not np.issubdtype(triangles.dtype, np.integer):
            raise SgeError(f"the LOD needs (T, 3) integer vertex indices, T > 0, got {triangles.dtype} {triangles.shape}")
        if triangles.min() < 0 or triangles.max() >= count:
            raise SgeError(f"the LOD's triangle indices run outside its {count} vertices")
        attributes = {}
        for name, values, width in (("normals", normals, 3), ("tangents", tangents, 3), ("binormals", binormals, 3),
                                    ("uvs", uvs, 2)):
            attributes[name] = np.asarray(values, np.float32)
            if attributes[name].shape != (count, width):
                raise SgeError(f"the LOD's {name} must be ({count}, {width}) like its vertices, "
                               f"got shape {attributes[name].shape}")
        return cls(positions, triangles.astype(np.int64), **attributes)


def write_lod(directory: Path, positions, triangles, normals, tangents, binormals, uvs, albedo, normal_map,
              name: str = "lod", skin: Skin | None = None) -> list[Path]:
    """Write the LOD into ``directory`` (which exists and is empty; the caller renames it
    into place afterwards) as ``{name}_albedo.png``, ``{name}_normal.png``, ``{name}.bam``,
    ``{name}.egg``, ``{name}.obj``, ``{name}.mtl`` and ``{name}.glb``; returns their paths
    in that order.

    Args:
        positions, normals, tangents, binormals: (V, 3) floats in the source model's own
            coordinate frame and units (written as they are: no axis conversion).
        triangles: (T, 3) integer vertex indices, counter-clockwise seen from the front.
        uvs: (V, 2) texture coordinates in [0, 1], v = 0 at the bottom of the image (GL).
        albedo: (H, W, 3) linear RGB in [0, 1], row 0 at v = 0; written as 8-bit sRGB.
        normal_map: (H, W, 3) tangent-space normals encoded as 0.5 n + 0.5 (flat is
            (0.5, 0.5, 1)), green along +v, row 0 at v = 0; data, not colour: written
            without sRGB.
        name: the models' file stem (also their node and material name).
        skin: the LOD's joints and per-vertex influences (V rows): the .bam and .egg are
            then a Character that plays the source's animations, and the .glb a skinned
            mesh with the same joints (see the module docs).

    Both Panda3D models hold one GeomNode (vertex, normal, texcoord, tangent, binormal:
    float32; the binormal along -v, see the module docs), a white diffuse material, the
    albedo on the default texture stage (modulate; sRGB-encoded values in an F_rgb8
    texture) and the normal map on a second stage in ``TextureStage.M_normal`` mode, which
    is what the auto-shader needs to bend normals. The .bam and .glb embed both images;
    the .egg and .mtl name the PNGs. The .glb is in glTF's +Y-up frame (optimizer.lod.glb).
    Every file is written atomically; a file that cannot be
    written raises ``SgeError``.
    """
    directory = Path(directory)
    if not name or name in (".", "..") or Path(name).name != name:
        raise SgeError(f"the LOD name {name!r} must be a plain file name without directories; give e.g. 'lod'")
    mesh = LodMesh.checked(positions, triangles, normals, tangents, binormals, uvs)
    _check_skin(skin, len(mesh.positions))
    albedo, normal_map = (_checked_image(label, values) for label, values in (("albedo", albedo),
                                                                               ("normal map", normal_map)))
    albedo_file, normal_file = texture_files(name)
    paths = [directory / albedo_file, directory / normal_file] + \
        [directory / f"{name}.{suffix}" for suffix in ("bam", "egg", "obj", "mtl", "glb")]
    albedo_path, normal_path, bam_path, egg_path, obj_path, mtl_path, glb_path = paths
    albedo8, normal8 = _albedo8(albedo), _normal8(normal_map)
    # PNG rows run top (v = 1) to bottom; the arrays run from v = 0 up. Each image is
    # encoded once, for its file and the .glb, the two at once (Pillow's encoder releases
    # the GIL): the encoding was a tenth of a 3000-step job's wall time on an H200.
    with ThreadPoolExecutor(2) as pool:
        albedo_png, normal_png = pool.map(png_bytes, (albedo8[::-1], normal8[::-1]))
    for path, data in ((albedo_path, albedo_png), (normal_path, normal_png)):
        _write_bytes(path, lambda stream, data=data: stream.write(data))
    _write_bam(bam_path, mesh, name, albedo8, normal8, skin)
    _write_egg(egg_path, mesh, name, skin)
    _write_obj(obj_path, mesh, name, mtl_path.name)
    _write_mtl(mtl_path, name)
    write_glb(glb_path, mesh.positions, mesh.triangles, mesh.normals, mesh.tangents, mesh.binormals, mesh.uvs,
              albedo_png, normal_png, name, _write_bytes,
              extend=None if skin is None else skin_extension(skin))
    return paths


def lod_model(positions, triangles, normals, tangents, binormals, uvs, albedo, normal_map,
              name: str = "lod", skin: Skin | None = None) -> NodePath:
    """The same LOD as ``write_lod``'s .bam, in memory: an ordinary Panda3D model (flatten
    it, instance it, write it to a .bam) whose textures hold the 8-bit images; with
    ``skin`` a Character, for ``Actor(model, {"walk": ...})``."""
    mesh = LodMesh.checked(positions, triangles, normals, tangents, binormals, uvs)
    _check_skin(skin, len(mesh.positions))
    albedo, normal_map = (_checked_image(label, values) for label, values in (("albedo", albedo),
                                                                               ("normal map", normal_map)))
    textures = [_memory_texture(file_name, image) for file_name, image in
                zip(texture_files(name), (_albedo8(albedo), _normal8(normal_map)))]
    return NodePath(_lod_node(mesh, name, *textures, skin=skin))


def _albedo8(albedo: np.ndarray) -> np.ndarray:
    return linear_to_srgb8(albedo)


def _normal8(normal_map: np.ndarray) -> np.ndarray:
    return np.round(255.0 * np.clip(normal_map, 0.0, 1.0)).astype(np.uint8)


def _memory_texture(file_name: str, rgb8: np.ndarray) -> Texture:
    """An 8-bit RGB texture holding an (H, W, 3) image, row 0 at v = 0, mipmapped (a LOD
    is mostly seen from afar); named after its PNG, which a .bam that embeds the pixels
    stores too, for a user's tools to show."""
    height, width, _ = rgb8.shape
    texture = Texture(Path(file_name).stem)
    texture.setup2dTexture(width, height, Texture.T_unsigned_byte, Texture.F_rgb8)
    texture.setFilename(Filename(file_name))
    texture.setRamImageAs(np.ascontiguousarray(rgb8).tobytes(), "RGB")
    texture.setMinfilter(SamplerState.FT_linear_mipmap_linear)
    return texture


def _check_skin(skin: Skin | None, vertex_count: int) -> None:
    if skin is not None:
        try:
            skin.check(vertex_count)
        except ValueError as error:
            raise SgeError(f"the LOD's skin does not fit it: {error}") from None


def _checked_image(label: str, values) -> np.ndarray:
    values = np.asarray(values, np.float32)
    if values.ndim != 3 or values.shape[2] != 3 or values.shape[0] == 0 or values.shape[1] == 0:
        raise SgeError(f"the LOD's {label} must be an (H, W, 3) image, got shape {values.shape}")
    return values


@contextmanager
def _reporting_failures(path: Path):
    """Turn an OS error while writing ``path`` into one SgeError line naming it."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        raise SgeError(f"could not write {path}: {reason}; make sure {path.parent} exists, "
                       f"is writable and has free space") from None


def _write_bytes(path: Path, write) -> None:
    """``write(stream)`` into ``path`` atomically (optimizer.images.atomic_write)."""
    with _reporting_failures(path):
        atomic_write(path, write)


def _write_through_filename(path: Path, write) -> None:
    """Atomically, for Panda3D writers that take a file name rather than a stream:
    ``write(Filename)`` fills a temporary file beside ``path`` (returning False on
    failure), which is then renamed onto ``path``."""
    with _reporting_failures(path):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(handle)
        try:
            if not write(Filename.fromOsSpecific(temporary)):
                raise OSError(f"Panda3D could not write {path.name}")
            os.chmod(temporary, default_mode(0o666))  # mkstemp makes it 0600
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise


def _vertex_format() -> GeomVertexFormat:
    return float_vertex_format(with_color=False)


def _white_material(name: str) -> Material:
    """Diffuse and ambient white, no specular: the LOD's colour is all in its albedo."""
    material = Material(name)
    material.setDiffuse((1, 1, 1, 1))
    material.setAmbient((1, 1, 1, 1))
    return material


def _lod_node(mesh: LodMesh, name: str, albedo: Texture, normal_map: Texture, skin: Skin | None = None) -> ModelRoot:
    """The LOD as Panda3D nodes: a ModelRoot over one GeomNode with real vertex data,
    its material and both texture stages; with ``skin``, over a Character instead."""
    if skin is not None:
        return _character_root(mesh, name, skin, _lod_state(albedo, normal_map))
    data = GeomVertexData(name, _vertex_format(), Geom.UH_static)
    data.uncleanSetNumRows(len(mesh.positions))
    interleaved = np.hstack([mesh.positions, mesh.normals, mesh.uvs, mesh.tangents, mesh.binormals])
    memoryview(data.modifyArray(0)).cast("B")[:] = np.ascontiguousarray(interleaved, np.float32).tobytes()
    triangles = GeomTriangles(Geom.UH_static)
    triangles.setIndexType(Geom.NT_uint32)
    indices = triangles.modifyVertices()
    indices.uncleanSetNumRows(mesh.triangles.size)
    memoryview(indices).cast("B")[:] = mesh.triangles.astype(np.uint32).tobytes()
    geom = Geom(data)
    geom.addPrimitive(triangles)
    # The state after the geometry, as before skins existed: made first, a few bytes of
    # the .bam came out different (checked on the bumpy sphere: docs/SKINNING.md).
    node = GeomNode(name)
    node.addGeom(geom, _lod_state(albedo, normal_map))
    root = ModelRoot(name)
    root.addChild(node)
    return root


def _lod_state(albedo: Texture, normal_map: Texture) -> RenderState:
    """The LOD's material and its two texture stages."""
    normal_stage = TextureStage("normal")
    normal_stage.setMode(TextureStage.M_normal)
    # The albedo PNG holds sRGB-encoded colour but is not marked F_srgb: source models
    # (Panda3D's own, .egg from most exporters) are not either, and on Panda3D's default
    # pipeline (no sRGB framebuffer) the LOD must look like the model it replaces. A
    # linear pipeline marks its textures sRGB itself (as it must for the source too).
    textures = TextureAttrib.make(albedo).addOnStage(normal_stage, normal_map)
    return RenderState.make(textures, MaterialAttrib.make(_white_material("white")))


def _character_root(mesh: LodMesh, name: str, skin: Skin, state: RenderState) -> ModelRoot:
    """The skinned LOD as Panda3D's egg loader builds it from the .egg's tree (a
    Character, its joint bundle, vertex data whose transform_blend column names each
    vertex's blend of joints), each Geom given ``state``: the tree is written without
    textures, so the loader looks for no image files."""
    # The egg loader rounds every joint weight to tenths by default
    # (egg-vertex-membership-quantize 0.1): the LOD's transferred weights are kept whole.
    unquantized = loadPrcFileData("sge-skin", "egg-vertex-membership-quantize 0")
    try:
        loaded = NodePath(loadEggData(_lod_egg(mesh, name, skin, textured=False)))
    finally:
        unloadPrcFile(unquantized)
    if loaded.find("**/+Character").isEmpty():
        raise SgeError(f"Panda3D's egg loader built no Character from the LOD's {len(skin.joint_names)} joints")
    for geom_path in loaded.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            node.setGeomState(g, state)
    root = ModelRoot(name)
    for child in loaded.getChildren():
        child.reparentTo(NodePath(root))
    return root


def _write_bam(path: Path, mesh: LodMesh, name: str, albedo8: np.ndarray, normal8: np.ndarray,
               skin: Skin | None = None) -> None:
    """The LOD as a Panda3D .bam with both textures' pixels in it."""
    write_bam_file(path, _lod_node(mesh, name, *(_memory_texture(file_name, image) for file_name, image in
                                                 zip(texture_files(name), (albedo8, normal8))), skin=skin))


def write_bam_file(path: Path, root) -> None:
    """``root`` (a node) as a .bam at ``path``, atomically, every texture's pixels in it."""

    def write(filename: Filename) -> bool:
        bam = BamFile()
        if not bam.openWrite(filename):
            return False
        # BTM_rawdata stores each texture's pixels, so the .bam alone is the whole asset,
        # whatever bam-texture-mode (a prc setting a game may change) says; by default a
        # .bam only names its image files, and one copied without them loads untextured.
        bam.getWriter().setFileTextureMode(BamWriter.BTM_rawdata)
        written = bam.writeObject(root)
        bam.close()
        return written

    _write_through_filename(path, write)


def _lod_egg(mesh: LodMesh, name: str, skin: Skin | None = None, textured: bool = True) -> EggData:
    """The LOD as an egg tree: one vertex pool (normal, UV with tangent and binormal per
    vertex), one triangle per EggPolygon, both textures (unless not ``textured``) and a
    white material; with ``skin``, the group is a character (``<Dart>``) holding the
    joints (``_add_joints``)."""
    egg = EggData()
    # The positions are in the frame the source model was loaded into, i.e. Panda3D's
    # default coordinate system; say so, so a loader converts only when that differs.
    egg.setCoordinateSystem(getDefaultCoordinateSystem())
    group = EggGroup(name if skin is None else skin.character_name)
    egg.addChild(group)
    pool = EggVertexPool(name)
    group.addChild(pool)
    for index, (position, normal, uv, tangent, binormal) in enumerate(
            zip(mesh.positions.tolist(), mesh.normals.tolist(), mesh.uvs.tolist(), mesh.tangents.tolist(),
                mesh.binormals.tolist())):
        vertex = EggVertex()
        vertex.setPos(tuple(position))
        vertex.setNormal(tuple(normal))
        uv_object = EggVertexUV("", tuple(uv))
        uv_object.setTangent(tuple(tangent))
        uv_object.setBinormal(tuple(binormal))
        vertex.setUvObj(uv_object)
        pool.addVertex(vertex, index)
    if skin is not None:
        _add_joints(group, pool, skin)

    albedo_file, normal_file = texture_files(name)
    albedo = EggTexture("albedo", Filename(albedo_file))
    albedo.setEnvType(EggTexture.ET_modulate)
    normal = EggTexture("normal", Filename(normal_file))
    normal.setEnvType(EggTexture.ET_normal)
    for texture in (albedo, normal):
        texture.setMinfilter(EggTexture.FT_linear_mipmap_linear)
    material = EggMaterial("white")
    material.setDiff((1, 1, 1, 1))
    material.setAmb((1, 1, 1, 1))
    for triangle in mesh.triangles.tolist():
        polygon = EggPolygon()
        group.addChild(polygon)
        for index in triangle:
            polygon.addVertex(pool.getVertex(index))
        if textured:
            polygon.addTexture(albedo)
            polygon.addTexture(normal)
            polygon.setMaterial(material)
    return egg


def _add_joints(character: EggGroup, pool: EggVertexPool, skin: Skin) -> None:
    """Make ``character`` a ``<Dart>`` group holding the skeleton: one ``<Joint>`` group
    per joint, nested as the source's, its transform the bind pose relative to its parent
    (the egg loader inverts their product into the joint's initial net transform, as it
    did for the source), and a membership of each vertex it moves, by its weight. A
    vertex with no influence belongs to no joint: it stays with the Character."""
    character.setDartType(EggGroup.DT_default)
    character_matrix = skin.character_matrix
    if not np.allclose(character_matrix, np.eye(4)):
        # Vertices are written in the source's frame and the Character sits at this
        # transform in it, as the source's does: the root joints' frame.
        character.setTransform3d(LMatrix4d(*character_matrix.ravel().tolist()))
    groups: list[EggGroup] = []
    for name, parent, local in zip(skin.joint_names, skin.parents.tolist(), skin.local_matrices()):
        joint = EggGroup(name)
        joint.setGroupType(EggGroup.GT_joint)
        joint.setTransform3d(LMatrix4d(*local.ravel().tolist()))
        (groups[parent] if parent >= 0 else character).addChild(joint)
        groups.append(joint)
    for index, (joints, weights) in enumerate(zip(skin.joints.tolist(), skin.weights.tolist())):
        vertex = pool.getVertex(index)
        for joint, weight in zip(joints, weights):
            if weight > 0:
                groups[joint].refVertex(vertex, weight)


def _write_egg(path: Path, mesh: LodMesh, name: str, skin: Skin | None = None) -> None:
    """The LOD as a Panda3D .egg (text; doubles written in full)."""
    egg = _lod_egg(mesh, name, skin)

    def write(filename: Filename) -> bool:
        return egg.writeEgg(filename)

    _write_through_filename(path, write)


def _write_obj(path: Path, mesh: LodMesh, name: str, mtl_name: str) -> None:
    """Wavefront OBJ: one v/vt/vn per vertex, faces ``f a/a/a`` with 1-based indices.
    %.9g round-trips float32 exactly."""
    faces = np.repeat(mesh.triangles + 1, 3, axis=1)

    def write(stream) -> None:
        stream.write(f"# {len(mesh.positions)} vertices, {len(mesh.triangles)} triangles, in the source model's "
                     f"frame and units (Panda3D's default is Z-up)\nmtllib {mtl_name}\no {name}\n".encode())
        np.savetxt(stream, mesh.positions, fmt="v %.9g %.9g %.9g")
        np.savetxt(stream, mesh.uvs, fmt="vt %.9g %.9g")
        np.savetxt(stream, mesh.normals, fmt="vn %.9g %.9g %.9g")
        stream.write(f"usemtl {name}\n".encode())
        np.savetxt(stream, faces, fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")

    _write_bytes(path, write)


def _write_mtl(path: Path, name: str) -> None:
    """The OBJ's material: diffuse white times the albedo (``map_Kd``), no specular, and
    the normal map as a normal map.

    ``Ka 0`` and ``Ks 0``: Panda3D 1.10's assimp loader takes the *ambient* colour as
    the specular one, and with no ``Ns`` a shininess of 0 makes any specular white
    everywhere. ``illum 1``: diffuse only (Blender then sets no specular or metallic).
    The normal map twice: ``norm`` (the statement of the PBR extension to .mtl, read by
    newer assimp and other tools) and ``map_Kn`` (the one the assimp in Panda3D 1.10
    reads as a normal map; it ignores ``norm``). Not ``map_Bump``: assimp reads that as
    a height map, which Panda3D's auto-shader uses for parallax."""
    albedo_file, normal_file = texture_files(name)
    text = (f"newmtl {name}\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nNs 1\nd 1\nillum 1\n"
            f"map_Kd {albedo_file}\nnorm {normal_file}\nmap_Kn {normal_file}\n")
    _write_bytes(path, lambda stream: stream.write(text.encode()))
