"""The user's source asset: a model Panda3D reads, flattened to one triangle mesh with a
material per triangle, and drawn back with the project's shading as the reference.

    mesh = load_source("models/panda")        # or "statue.glb", "rock.obj", "prop.bam"
    reference = reference_model(mesh)         # one child per material
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from panda3d.core import (
    ColorAttrib,
    ColorScaleAttrib,
    Filename,
    Geom,
    GeomVertexArrayFormat,
    GeomVertexFormat,
    InternalName,
    MaterialAttrib,
    NodePath,
    TexMatrixAttrib,
    Texture,
    TextureAttrib,
    TextureStage,
    VirtualFileSystem,
)

from .assets import (
    GLTF_EXTENSIONS,
    MODEL_EXTENSIONS,
    find_model,
    geom_node_paths,
    holds_animation,
    model_extension,
    model_stem,
    read_model,
    srgb8_to_linear,
    texture_linear_rgb,
)
from .errors import SgeError
from .images import linear_to_srgb8
from .lod.geometry import vertex_normals
from .surface.mesh import geom_node
from .lod.skin import Skin, SkinReader
from .surface.texture import float_texture

# Stages whose texture is the surface colour; normal, gloss, emission, selector (glTF
# metal-roughness) maps and the like are not.
ALBEDO_MODES = (TextureStage.M_modulate, TextureStage.M_modulate_glow, TextureStage.M_modulate_gloss,
                TextureStage.M_replace, TextureStage.M_decal)
_INDEX_TYPES = {Geom.NT_uint8: np.uint8, Geom.NT_uint16: np.uint16, Geom.NT_uint32: np.uint32}


@dataclass
class Material:
    """What colours a set of triangles: ``base_color`` (3,) linear RGB (flat colour x
    material diffuse / base colour x colour scale; white when none) times ``texture``
    (H, W, 3) linear albedo, row 0 at v = 0 (GL convention), or None."""

    name: str
    base_color: np.ndarray
    texture: np.ndarray | None = None


@dataclass
class SourceMesh:
    """A model flattened to one triangle mesh in its root's frame.

    positions, normals (unit), colors (linear per-vertex colour, white where the model has
    none; it multiplies the material's) (V, 3); uvs (V, 2) the albedo texture's
    coordinates (zeros where none); triangles (T, 3) int32; material_index (T,) int32
    into ``materials``; skin: the joints and per-vertex influences of a Character's
    vertices (positions are its bind pose), None for a source without joints.
    """

    name: str
    path: Path
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    triangles: np.ndarray
    material_index: np.ndarray
    materials: list[Material]
    colors: np.ndarray | None = field(default=None, repr=False)
    # One line each about what loading had to work around (a texture found beside the model).
    notes: list[str] = field(default_factory=list, repr=False)
    skin: Skin | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.colors is None:
            self.colors = np.ones((len(self.positions), 3), np.float32)

    def bounds(self) -> tuple[np.ndarray, float]:
        """(center (3,), radius): a sphere around the vertices the triangles use, centred
        on their bounding box."""
        used = self.positions[np.unique(self.triangles)].astype(np.float64)  # float32 squares overflow past 1e19
        center = (used.min(axis=0) + used.max(axis=0)) / 2.0
        return center, float(np.linalg.norm(used - center, axis=1).max())

    def file_hash(self) -> str:
        """sha256 (hex) of the source file's bytes, as stored (a .pz file compressed)."""
        return file_sha256(self.path) or hashlib.sha256(  # a model made in memory (source_from_model): its geometry
            self.positions.tobytes() + self.triangles.tobytes()).hexdigest()


def file_sha256(path: Path) -> str | None:
    """sha256 (hex) of a model file's bytes as stored, on disk or inside a multifile mounted
    on the model-path; None when there are none to read."""
    path = Path(path)
    if path.is_file():
        data = path.read_bytes()
    else:
        data = VirtualFileSystem.getGlobalPtr().readFile(Filename.fromOsSpecific(str(path)), False)
    return hashlib.sha256(data).hexdigest() if data else None


def load_source(source: str | Path) -> SourceMesh:
    """Load ``source`` (a file path, or a name on Panda3D's model-path such as
    ``models/panda``; a path on disk wins) and flatten every triangle of it.

    Every GeomNode counts (a Character's in its bind pose, its joints and the vertices'
    influences kept in ``skin``), with its transform relative to the model's root; one
    Material per distinct (albedo texture, colour) state;
    transparency is ignored. Bad input raises SgeError in one line.
    """
    filename = find_model(source)
    path = Path(filename.toOsSpecific())
    notes: list[str] = []
    model = read_model(filename, notes)
    try:
        mesh = _flatten(model, model_stem(path), path, linear_colors=model_extension(path) in GLTF_EXTENSIONS)
    except SgeError:
        raise
    except Exception as error:  # Panda3D's asserts surface as AssertionError; say which file, in one line
        raise SgeError(f"cannot flatten '{path.name}' ({type(error).__name__}: {' '.join(str(error).split())}); "
                       f"re-export it as .glb or .egg") from None
    mesh.notes = notes + mesh.notes
    return mesh


def source_from_model(model: NodePath, name: str = "model") -> SourceMesh:
    """Flatten a model already in the scene graph (e.g. from ``base.loader.loadModel``), as
    ``load_source`` does a file; its colours are taken as sRGB-encoded (egg, bam, obj)."""
    if model_extension(name) in MODEL_EXTENSIONS:  # a loaded model's node is named after its file
        name = model_stem(name)
    node = model.node()
    fullpath = node.getFullpath() if hasattr(node, "getFullpath") else Filename()
    path = Path(fullpath.toOsSpecific()) if not fullpath.empty() else Path(name)
    try:
        return _flatten(model, name, path, linear_colors=False)
    except SgeError:
        raise
    except Exception as error:
        raise SgeError(f"cannot flatten the model '{name}' ({type(error).__name__}: {' '.join(str(error).split())})") from None


def reference_model(mesh: SourceMesh) -> NodePath:
    """A node drawing ``mesh``: one child per material (its triangles, colours = vertex
    colour x base colour) whose "albedo" shader input, at priority 20, is the material's
    texture or a 1x1 white one; above the 1x1 white albedo a caller sets at priority 10
    on the root (``optimizer.surface.mesh.reference_node(model, albedo=white, lit=True)``)."""
    root = NodePath(f"{mesh.name}-reference")
    for index, material in enumerate(mesh.materials):
        corners = mesh.triangles[mesh.material_index == index]
        used, local = np.unique(corners, return_inverse=True)
        child = geom_node(material.name, mesh.positions[used], local.reshape(-1, 3).astype(np.int32),
                          colors=mesh.colors[used] * material.base_color, uvs=mesh.uvs[used],
                          normals=mesh.normals[used])
        albedo = material.texture if material.texture is not None else np.ones((1, 1, 3), np.float32)
        child.setShaderInput("albedo", float_texture(material.name, albedo), 20)
        child.reparentTo(root)
    return root


def _flatten(model: NodePath, name: str, path: Path, linear_colors: bool) -> SourceMesh:
    """Every triangle of ``model`` in the root's frame. ``linear_colors``: the file's
    colours are linear (glTF) rather than sRGB-encoded (egg, bam, obj)."""
    parts = {key: [] for key in ("positions", "normals", "uvs", "colors", "triangles", "material_index")}
    materials = _MaterialTable(path)
    skins = SkinReader(model)
    vertex_count = 0
    for geom_path in geom_node_paths(model):
        node = geom_path.node()
        matrix = _matrix(geom_path.getMat(model))
        for g in range(node.getNumGeoms()):
            state = geom_path.getNetState().compose(node.getGeomState(g))
            geom = _geom_arrays(node.getGeom(g), state, matrix, linear_colors, path)
            if geom is None:
                continue
            triangles, base_color, texture = geom.pop("triangles"), geom.pop("base_color"), geom.pop("texture")
            skins.add(node.getGeom(g).getVertexData(), geom.pop("rows"))
            for part, values in geom.items():
                parts[part].append(values.astype(np.float32))
            parts["triangles"].append(triangles + vertex_count)
            parts["material_index"].append(np.full(len(triangles), materials.index(state, base_color, texture)))
            vertex_count += len(geom["positions"])
    if not parts["triangles"] and holds_animation(model):
        raise SgeError(f"'{path.name}' holds an animation, not geometry; give the model it animates "
                       f"instead")
    if not parts["triangles"]:
        raise SgeError(f"'{path.name}' has no triangles (is the file complete?); "
                       f"give a model with at least one triangle")
    arrays = {part: np.concatenate(values) for part, values in parts.items()}
    skin, skin_note = skins.skin()
    _check_finite(arrays["positions"], "vertex coordinates", path)  # after the transforms too
    _check_finite(arrays["uvs"], "texture coordinates", path)
    _check_some_area(arrays["positions"], arrays["triangles"], path)
    return SourceMesh(name=name, path=path, positions=arrays["positions"], normals=arrays["normals"],
                      uvs=arrays["uvs"], triangles=arrays["triangles"].astype(np.int32),
                      material_index=arrays["material_index"].astype(np.int32), materials=materials.materials,
                      colors=arrays["colors"], skin=skin, notes=[skin_note] if skin_note else [])


def _geom_arrays(geom, state, matrix: np.ndarray, linear_colors: bool, path: Path) -> dict | None:
    """One Geom's triangles (re-indexed to the vertices they use), those vertices' rows
    in its vertex data, positions, normals (in the root's frame), uvs and linear colours,
    and its linear base colour and albedo texture; None when it has no triangles."""
    corners = _triangle_indices(geom)
    if len(corners) == 0:
        return None
    used, triangles = np.unique(corners, return_inverse=True)
    triangles = triangles.reshape(-1, 3)
    data = geom.getVertexData()
    vertex_format = data.getFormat()

    # Transforms keep the index order even when they mirror: Panda3D draws a mirrored node
    # inside out (it does not flip the culling), and the egg loader relies on that.
    positions = _column(data, InternalName.getVertex(), 3, Geom.C_point)[used]
    _check_finite(positions, "vertex coordinates", path)
    positions = positions @ matrix[:3, :3] + matrix[3, :3]
    normals = np.zeros_like(positions)
    if vertex_format.hasColumn(InternalName.getNormal()):
        normals = _column(data, InternalName.getNormal(), 3, Geom.C_normal)[used] @ np.linalg.inv(matrix[:3, :3]).T
    normals = _unit_normals(positions, triangles, normals)

    stage, texture = _albedo_stage(state)
    texcoord = stage.getTexcoordName() if stage is not None else InternalName.getTexcoord()
    if not vertex_format.hasColumn(texcoord):
        texcoord = _first_texcoord(vertex_format)
    uvs = np.zeros((len(used), 2))
    if texcoord is not None:
        uvs = _column(data, texcoord, 2, Geom.C_texcoord)[used]
        if stage is not None and state.getAttrib(TexMatrixAttrib) is not None:
            uvs = _transform_uvs(uvs, state.getAttrib(TexMatrixAttrib).getMat(stage))

    base_color, vertex_colors = _colors(state)
    colors = np.ones((len(used), 3))
    if vertex_colors and vertex_format.hasColumn(InternalName.getColor()):
        colors = _column(data, InternalName.getColor(), 4, Geom.C_color)[used, :3]
    if not linear_colors:
        colors, base_color = _srgb_to_linear(colors), _srgb_to_linear(base_color)
    return {"triangles": triangles, "rows": used, "positions": positions, "normals": normals, "uvs": uvs, "colors": colors,
            "base_color": base_color, "texture": texture}


class _MaterialTable:
    """One Material per distinct (albedo texture, base colour); each texture read once."""

    def __init__(self, path: Path):
        self.path = path
        self.materials: list[Material] = []
        self.keys: dict[tuple, int] = {}
        self.textures: dict[Texture, np.ndarray] = {}

    def index(self, state, base_color: np.ndarray, texture) -> int:
        key = (texture, tuple(np.round(base_color, 6)))
        if key not in self.keys:
            if texture is not None and texture not in self.textures:
                self.textures[texture] = _albedo_values(texture, self.path)
            self.keys[key] = len(self.materials)
            self.materials.append(Material(_material_name(state, texture, base_color, self.materials),
                                           base_color.astype(np.float32),
                                           self.textures[texture] if texture is not None else None))
        return self.keys[key]


def _check_finite(values: np.ndarray, what: str, path: Path) -> None:
    bad = int((~np.isfinite(values)).any(axis=1).sum())
    if bad:
        raise SgeError(f"'{path.name}' has {bad} {'vertex' if bad == 1 else 'vertices'} with non-finite "
                       f"(NaN or infinite) {what}; fix them in the modelling tool and re-export")


def _check_some_area(positions: np.ndarray, triangles: np.ndarray, path: Path) -> None:
    """At least one triangle must have an area: with only slivers (corners equal or in a
    line) the unwrap downstream yields NaN UVs, a message that names nothing."""
    corners = positions.astype(np.float64)[triangles]
    edges = np.stack([corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 1], corners[:, 0] - corners[:, 2]], 1)
    longest = np.square(edges).sum(axis=2).max(axis=1)
    doubled_area = np.linalg.norm(np.cross(edges[:, 0], edges[:, 1]), axis=1)
    if not (doubled_area > 1e-6 * longest).any():  # height at least a millionth of the longest edge
        raise SgeError(f"'{path.name}' has no triangle with an area (all {len(triangles)} have their corners equal "
                       f"or in a line); give a model with real faces")


def _matrix(mat) -> np.ndarray:
    """A Panda3D LMatrix4 as (4, 4) float64; Panda3D multiplies row vectors: p' = p M."""
    return np.array([list(mat.getRow(i)) for i in range(4)], np.float64)


def _triangle_indices(geom) -> np.ndarray:
    """(T, 3) vertex rows of every triangle of ``geom``: strips and fans decomposed;
    points, lines and patches left out."""
    triangles = []
    for p in range(geom.getNumPrimitives()):
        primitive = geom.getPrimitive(p)
        if primitive.getPrimitiveType() != Geom.PT_polygons or primitive.getNumVertices() == 0:
            continue
        primitive = primitive.decompose()  # a no-op for GeomTriangles
        if primitive.getNumVerticesPerPrimitive() != 3:
            continue
        if primitive.isIndexed():
            indices = np.frombuffer(memoryview(primitive.getVertices()), _INDEX_TYPES[primitive.getIndexType()])
        else:
            indices = primitive.getFirstVertex() + np.arange(primitive.getNumVertices())
        triangles.append(indices.astype(np.int64).reshape(-1, 3))
    return np.concatenate(triangles) if triangles else np.zeros((0, 3), np.int64)


def _column(data, name, width: int, contents) -> np.ndarray:
    """One vertex column as (rows, width) float64, whatever its stored type (packed
    colours, 4-component points, float64): Panda3D converts it."""
    array_format = GeomVertexArrayFormat()
    array_format.addColumn(name, width, Geom.NT_float32, contents)
    converted = data.convertTo(GeomVertexFormat.registerFormat(array_format))
    return np.frombuffer(memoryview(converted.getArray(0)), np.float32).reshape(-1, width).astype(np.float64)


def _first_texcoord(vertex_format):
    for i in range(vertex_format.getNumTexcoords()):
        return vertex_format.getTexcoord(i)
    return None


def _transform_uvs(uvs: np.ndarray, mat) -> np.ndarray:
    m = _matrix(mat)
    return uvs @ m[:2, :2] + m[3, :2]


def _unit_normals(positions: np.ndarray, triangles: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """``normals`` normalised; where they are missing, zero or not finite, area-weighted
    normals of the triangles around the vertex instead (+z for a vertex of degenerate
    triangles only)."""
    length = np.linalg.norm(normals, axis=1)
    bad = ~np.isfinite(length) | (length < 1e-12)
    if bad.any():
        normals = np.where(bad[:, None], vertex_normals(positions, triangles), normals)
        length = np.linalg.norm(normals, axis=1)
    return normals / np.where(length < 1e-12, 1.0, length)[:, None]


def _albedo_stage(state):
    """(TextureStage, Texture) of the first 2D colour texture ``state`` applies, or (None, None)."""
    attrib = state.getAttrib(TextureAttrib)
    if attrib is None:
        return None, None
    for i in range(attrib.getNumOnStages()):  # in render order
        stage = attrib.getOnStage(i)
        texture = attrib.getOnTexture(stage)
        if stage.getMode() in ALBEDO_MODES and texture.getTextureType() == Texture.TT_2d_texture:
            return stage, texture
    return None, None


def _albedo_values(texture, path: Path) -> np.ndarray:
    """A texture's image as linear RGB. Read again from its file: Panda3D's texture pool
    would otherwise hand back the image it read first, before the artist's last edit."""
    if texture.hasFullpath() and not texture.reload():
        raise SgeError(f"'{path.name}' uses the texture '{texture.getFullpath().toOsSpecific()}', which cannot be "
                       f"read again; check that the image file is there and readable")
    return texture_linear_rgb(texture)


def _colors(state) -> tuple[np.ndarray, bool]:
    """(flat colour x material diffuse/base colour x colour scale as RGB, whether the
    vertices' own colours count), as Panda3D would draw it."""
    color = np.ones(3)
    vertex_colors = True
    attrib = state.getAttrib(ColorAttrib)
    if attrib is not None and attrib.getColorType() == ColorAttrib.T_flat:
        color, vertex_colors = np.array(attrib.getColor())[:3], False
    elif attrib is not None and attrib.getColorType() == ColorAttrib.T_off:
        vertex_colors = False
    material_attrib = state.getAttrib(MaterialAttrib)
    material = material_attrib.getMaterial() if material_attrib is not None else None
    if material is not None and material.hasDiffuse():
        color = color * np.array(material.getDiffuse())[:3]
    elif material is not None and material.hasBaseColor():
        color = color * np.array(material.getBaseColor())[:3]
    scale = state.getAttrib(ColorScaleAttrib)
    if scale is not None and scale.hasScale():
        color = color * np.array(scale.getScale())[:3]
    return np.clip(color, 0.0, None), vertex_colors


def _srgb_to_linear(values: np.ndarray) -> np.ndarray:
    return srgb8_to_linear(np.clip(values, 0.0, None) * 255.0).astype(np.float64)


def _material_name(state, texture, base_color: np.ndarray, materials: list[Material]) -> str:
    """The material's own name, else its texture's, else its colour; made unique."""
    material_attrib = state.getAttrib(MaterialAttrib)
    material = material_attrib.getMaterial() if material_attrib is not None else None
    name = material.getName() if material is not None else ""
    if not name and texture is not None:
        name = texture.getName()
    if not name:
        name = "color-" + "".join(f"{c:02x}" for c in linear_to_srgb8(base_color))
    taken = {material.name for material in materials}
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}-{n}"
    return unique
