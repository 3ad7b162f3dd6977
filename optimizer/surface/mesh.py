"""Triangle meshes whose vertex attributes are parameter sets (the mesh-geometry and
vertex-attribute kinds): vertex positions and per-vertex colors, drawn by vertex pulling
from the buffers P writes; contributors of a pixel are the vertices of its triangle."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from panda3d.core import (
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    InternalName,
    GeomVertexData,
    GeomVertexFormat,
    GeomVertexWriter,
    NodePath,
    OmniBoundingVolume,
)

from .. import gpu
from ..errors import SgeError
from ..kind import Kind, Reference
from ..parameters import ContributorDomain, ParameterSet, Settings
from ..shaders import raster_shader


GEOMETRY_CHANNEL, ATTRIBUTE_CHANNEL = 0, 1  # as gradient_vertices.comp
NORMALS_GROUP = 64  # vertex_normals.comp's local_size_x


def _fitting(values: np.ndarray, shape: tuple) -> np.ndarray:
    """``values`` as ``shape`` (ValueError when they hold another number of values)."""
    values = np.asarray(values, np.float32)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{values.size} values for a set of shape {shape}")
    return values.reshape(shape)


def _per_vertex(values, count: int, width: int, fill: float = 0.0) -> np.ndarray:
    """An optional per-vertex attribute as float32, ``fill`` where it is not given."""
    return np.full((count, width), fill, np.float32) if values is None else np.asarray(values, np.float32)


class VertexDomain(ContributorDomain):
    """Contributors = the vertices of the triangle(s) a pixel's ID targets name.

    With ``barycentric_weights`` each vertex's share of a pixel is weighted by its
    barycentric coordinate there (to ``weight_power`` for geometry): a pixel far from a
    vertex (near the opposite edge) barely depends on it, so it adds mostly noise to that
    vertex's estimate. Vertex attributes read a channel that leaves out pixels whose
    coverage flips between the two renders (gradient_vertices.comp says why).
    """

    gradient_shader = "surface/gradient_vertices.comp"

    def __init__(self, triangles: gpu.Texture, vertex_count: int, barycentric_weights: bool, weight_power: float):
        super().__init__("vertices", vertex_count, channels=2)
        self.triangles = triangles
        self.barycentric_weights = barycentric_weights
        self.gradient_defines = {"WEIGHT_POWER": f"{float(weight_power):.6f}"}

    def gradient_inputs(self, targets: dict) -> dict:
        return {"triangles": self.triangles, "accumulator": self.accumulator, "element_count": self.element_count,
                "barycentric_weights": int(self.barycentric_weights)}


class FollowedSet(ParameterSet):
    """A parameter set whose copies other passes turn into what the draw reads (vertex
    normals that follow the positions; a subdivision cage refined and displaced): the
    ``passes`` run right after its P."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passes: list = []

    def after_perturb(self):
        return self.passes


def vertex_adjacency(welded_triangles: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The triangles around each of ``count`` welded vertices, as area_normal.glsl reads
    them: (offsets (count + 1,): each vertex's first entry, entries (3T,): triangles)."""
    corners = np.asarray(welded_triangles).ravel()
    order = np.argsort(corners, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(corners, minlength=count))]).astype(np.int32)
    return offsets, (order // 3).astype(np.int32)


def vertex_normals_pass(name: str, welded_positions, welded_corners, adjacency, position_index, normals,
                        split_count: int) -> tuple[str, str, tuple[int, int, int], dict]:
    """The pass (shaders/surface/vertex_normals.comp) that writes ``normals`` ([theta+ |
    theta-] per split vertex) from ``welded_positions``: each vertex's area-weighted normal."""
    offsets, triangles = adjacency
    return (name, "surface/vertex_normals.comp", (math.ceil(2 * split_count / NORMALS_GROUP), 1, 1),
            {"adjacency_offsets": offsets, "adjacency_triangles": triangles, "welded_corners": welded_corners,
             "welded_positions": welded_positions, "position_index": position_index, "vertex_normals": normals,
             "split_count": split_count})


class Mesh(Kind):
    """A triangle mesh on the GPU: topology fixed, attributes as parameter sets.

    Args:
        positions: (V, 3) vertex positions, or (W, 3) with ``position_index``.
        triangles: (T, 3) vertex indices.
        position_index: (V,) the row of ``positions`` each vertex takes its position from.
            Vertices split at a UV seam share one position this way, so the seam cannot
            tear as the positions are optimised: the positions' contributors are then
            the shared positions (vertex colors cannot be optimised with it).
        colors: (V, 3) linear RGB per vertex (white when omitted).
        uvs: (V, 2) texture coordinates (zeros when omitted).
        position_settings / color_settings: optimise that attribute with these settings;
            None keeps it frozen.
        barycentric_weights: weight each pixel's contribution to a vertex by the
            vertex's barycentric coordinate (False: every contributing pixel counts 1).
        albedo: an ``optimizer.surface.texture.TextureSet`` multiplying the vertex colors,
            sampled at the vertex uvs (optimised or frozen); linear values, or sRGB-encoded
            ones with ``albedo_srgb`` (decoded by the shader).
        normals: (V, 3) vertex normals; given, the mesh is lit (Lambert + ambient under
            the optimizer's per-step light), else unlit.
        roughness: a one-channel ``TextureSet`` driving a specular lobe (lit meshes).
        normal_map: a three-channel ``TextureSet`` of tangent-space normals encoded as
            0.5 n + 0.5, with (V, 3) ``tangents`` and ``binormals`` (lit meshes).
        live_normals: the vertex normals follow the optimised positions: after the
            positions' P a pass recomputes every vertex's area-weighted normal (over the
            triangles of its welded position) for theta+ and theta-, so a vertex's move
            changes the shading as well as where the surface lies. ``normals`` are then
            what the draw shows until the first step. (Tangents and binormals stay.)
    """

    # The plane it writes beyond the core's (optimizer/kind.py): .xy the texture
    # coordinates, .zw the barycentrics of the triangle's corners 0 and 1.
    planes = ("uv",)

    def __init__(self, positions, triangles, colors=None, uvs=None,
                 position_settings: Settings | None = None, color_settings: Settings | None = None,
                 barycentric_weights: bool = True, weight_power: float = 2.0, albedo=None, normals=None,
                 roughness=None, normal_map=None, tangents=None, binormals=None, position_index=None,
                 albedo_srgb: bool = False, live_normals: bool = False):
        positions = np.asarray(positions, np.float32)
        triangles = np.asarray(triangles)
        if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
            raise SgeError(f"a mesh needs (V, 3) vertex positions, got shape {positions.shape}")
        if triangles.size == 0:
            raise SgeError("the mesh has no triangles; give a model with at least one triangle")
        if triangles.ndim != 2 or triangles.shape[1] != 3 or not np.issubdtype(triangles.dtype, np.integer):
            raise SgeError(f"a mesh needs (T, 3) integer vertex indices, got {triangles.dtype} {triangles.shape}")
        triangles = triangles.astype(np.int32)
        if position_index is None:
            position_index = np.arange(len(positions), dtype=np.int32)
        position_index = np.asarray(position_index).astype(np.int32).ravel()
        if position_index.size and (position_index.min() < 0 or position_index.max() >= len(positions)):
            raise SgeError(f"the mesh's position indices run outside its {len(positions)} positions")
        vertex_count = len(position_index)
        if triangles.min() < 0 or triangles.max() >= vertex_count:
            raise SgeError(f"the mesh's triangle indices run outside its {vertex_count} vertices")
        welded = len(positions) != vertex_count or np.any(position_index != np.arange(vertex_count))
        if welded and color_settings is not None:
            raise SgeError("vertex colors cannot be optimised on a mesh whose vertices share positions")
        self.lit = normals is not None
        if live_normals and (normals is None or position_settings is None):
            raise SgeError("live normals follow optimised positions: give the mesh normals and position settings")
        if normal_map is not None and (tangents is None or binormals is None):
            raise SgeError("a normal map needs per-vertex tangents and binormals")
        colors = _per_vertex(colors, vertex_count, 3, fill=1.0)
        uvs, normals, tangents, binormals = (_per_vertex(values, vertex_count, width) for values, width in
                                             ((uvs, 2), (normals, 3), (tangents, 3), (binormals, 3)))
        for name, values, width in (("colors", colors, 3), ("uvs", uvs, 2), ("normals", normals, 3),
                                    ("tangents", tangents, 3), ("binormals", binormals, 3)):
            if values.shape != (vertex_count, width):
                raise SgeError(f"the mesh's {name} must be ({vertex_count}, {width}) like its vertices, "
                               f"got shape {values.shape}")
        self.triangle_count = len(triangles)
        self.triangles = gpu.buffer_texture("triangles", triangles)
        self.position_index = gpu.buffer_texture("position-index", position_index)
        # G names the shared positions of a triangle's corners.
        contributors = gpu.buffer_texture("position-triangles", position_index[triangles]) if welded else self.triangles
        self.domain = VertexDomain(contributors, len(positions), barycentric_weights, weight_power)
        self.positions = FollowedSet("positions", positions, self.domain, position_settings,
                                     frozen=position_settings is None, channel=GEOMETRY_CHANNEL)
        self.colors = ParameterSet("colors", colors, self.domain, color_settings, frozen=color_settings is None,
                                   channel=ATTRIBUTE_CHANNEL)
        if self.colors.frozen:  # G then skips the attribute channel nobody reads
            self.domain.gradient_defines["GEOMETRY_ONLY"] = True
        self.uvs = ParameterSet("uvs", uvs, None, frozen=True)
        self.normals = ParameterSet("normals", normals, None, frozen=True)
        self.tangents = ParameterSet("tangents", tangents, None, frozen=True)
        self.binormals = ParameterSet("binormals", binormals, None, frozen=True)
        if live_normals:  # the draw reads the pass's normals, not the frozen set's copies
            self.normals.perturbed = gpu.buffer_texture("live-normals", np.concatenate([normals.ravel()] * 2))
            adjacency = tuple(gpu.buffer_texture(f"vertex-adjacency-{part}", values) for part, values in
                              zip(("offsets", "triangles"), vertex_adjacency(position_index[triangles],
                                                                             len(positions))))
            self.positions.passes = [vertex_normals_pass("mesh:vertex-normals", self.positions.perturbed,
                                                         contributors, adjacency, self.position_index,
                                                         self.normals.perturbed, vertex_count)]
        self.normal_map = normal_map
        self.albedo = albedo
        self.roughness = roughness
        self.shading = Shading(albedo is not None, self.lit, roughness is not None, normal_map is not None,
                               albedo_srgb)
        self._defines = self.shading.defines()

    @property
    def _sets(self) -> list[ParameterSet]:
        return [s for s in (self.positions, self.colors, self.uvs, self.normals, self.tangents, self.binormals,
                            self.albedo, self.roughness, self.normal_map) if s is not None]

    @property
    def parameter_sets(self) -> list[ParameterSet]:
        return [s for s in self._sets if not s.frozen]

    def state(self, context) -> dict:
        """Every set's state, keyed "SET.KEY": the optimised sets' theta and Adam moments,
        the frozen ones' theta (what they draw: uvs, vertex frames, maps not optimised)."""
        return {f"{parameter_set.name}.{key}": values for parameter_set in self._sets
                for key, values in (parameter_set.state(context) if not parameter_set.frozen
                                    else {"theta": parameter_set.values(context)}).items()}

    def load_state(self, state: dict) -> None:
        """Restore what ``state`` returned (KeyError or ValueError when it does not fit)."""
        for parameter_set in self._sets:
            if parameter_set.frozen:
                parameter_set.move(_fitting(state[f"{parameter_set.name}.theta"], parameter_set.shape))
            else:
                parameter_set.load_state({key: _fitting(state[f"{parameter_set.name}.{key}"], parameter_set.shape)
                                          for key in ("theta", "m", "v")})

    def side_inputs(self, side: int) -> dict:
        """Inputs that differ between the theta+ (0) and theta- (1) renders."""
        inputs = {}
        for parameter_set in self._sets:
            inputs.update(parameter_set.side_inputs(side))
        return inputs

    def make_node(self, panda_camera: bool = False) -> NodePath:
        """A node drawing this mesh from the GPU buffers; set ``side`` 0/1 above it. With
        ``panda_camera`` it is drawn by whatever Panda3D camera sees it (with its own
        transform) instead of the optimizer's per-step view."""
        path = gpu.pulled_geometry("sge-mesh", 3 * self.triangle_count)
        # The optimizer's renders stamp their ID target (surface.frag); a Panda3D camera's don't.
        defines = {**self._defines, "PANDA_CAMERA": True} if panda_camera else {**self._defines, "STAMPED": True}
        path.setShader(raster_shader("surface/mesh.vert", "surface/surface.frag", defines))
        path.setTwoSided(True)
        path.setShaderInputs(triangles=self.triangles, position_index=self.position_index,
                             positions=self.positions.perturbed,
                             colors=self.colors.perturbed, uvs=self.uvs.perturbed, normals=self.normals.perturbed,
                             tangents=self.tangents.perturbed, binormals=self.binormals.perturbed)
        return path


@dataclass(frozen=True)
class Shading:
    """How a surface is shaded (surface.frag's variant), one description shared by a
    ``Mesh`` and the ``ModelReference`` it is fitted to: an albedo texture (holding
    sRGB-encoded values with ``albedo_srgb``), lighting (Lambert + ambient under the
    step's light), a specular lobe driven by a roughness texture and a tangent-space
    normal map (both: lit surfaces only)."""

    albedo: bool = False
    lit: bool = False
    roughness: bool = False
    normal_map: bool = False
    albedo_srgb: bool = False

    def __post_init__(self):
        if (self.roughness or self.normal_map) and not self.lit:
            raise SgeError("roughness and normal maps need a lit surface: give the mesh normals")

    def defines(self) -> dict:
        wanted = (("ALBEDO_TEXTURE", self.albedo), ("LIT", self.lit), ("ROUGHNESS_TEXTURE", self.roughness),
                  ("NORMAL_TEXTURE", self.normal_map), ("ALBEDO_SRGB", self.albedo and self.albedo_srgb))
        return {key: True for key, on in wanted if on}


def shading_defines(albedo: bool, lit: bool, roughness: bool = False, normal_map: bool = False) -> dict:
    """``Shading(...).defines()`` (apps drawing with the surface shader)."""
    return Shading(albedo, lit, roughness, normal_map).defines()


class ModelReference(Reference):
    """A Panda3D model drawn as the reference with the surface shading (surface.frag), as
    a ``Mesh`` is: ``albedo`` (a Texture) multiplies its vertex colors, ``lit`` lights it
    with its own normals, ``roughness`` and ``normal_map`` as ``reference_node`` says.
    A lit model can also draw its shading normals (``make_node(output_normal=True)``,
    for baking normal maps)."""

    def __init__(self, model: NodePath, albedo=None, lit: bool = False, roughness=None, normal_map=None):
        self.model = model
        self.textures = {"albedo": albedo, "roughness": roughness, "normal_map": normal_map}
        self.shading = Shading(albedo is not None, lit, roughness is not None, normal_map is not None)

    def make_node(self, output_normal: bool = False) -> NodePath:
        return reference_node(self.model.copyTo(NodePath("sge-reference")), lit=self.shading.lit,
                              output_normal=output_normal, **self.textures)


def reference_node(model: NodePath, albedo=None, lit: bool = False, roughness=None, normal_map=None,
                   output_normal: bool = False) -> NodePath:
    """Prepare a Panda3D model to be drawn as the reference, with our shading; ``albedo``
    (a Texture) multiplies its vertex colors, as an optimised mesh's albedo map does,
    ``lit`` lights it with its own normals like a lit mesh, ``roughness`` (a Texture, red
    channel) drives its specular lobe and ``normal_map`` bends its normals (the model
    needs tangents and binormals then). ``output_normal`` (lit models): draw the shading
    normal, encoded as a color, instead of the color (baking normal maps); calling this
    again on the model without it restores the shading."""
    defines = Shading(albedo is not None, lit, roughness is not None, normal_map is not None).defines()
    defines["STAMPED"] = True  # drawn by the optimizer's renders (surface.frag)
    if output_normal:
        if not lit:
            raise SgeError("only a lit reference has normals to draw")
        defines["OUTPUT_NORMAL"] = True
    model.setShader(raster_shader("surface/reference.vert", "surface/surface.frag", defines), 10)
    for name, texture in (("albedo", albedo), ("roughness", roughness), ("normal_map", normal_map)):
        if texture is not None:
            model.setShaderInput(name, texture, 10)
    model.setTwoSided(True)
    model.node().setBounds(OmniBoundingVolume())
    model.node().setFinal(True)
    # Drawn in scene-graph order: the default opaque bin sorts draws by render state,
    # comparing some attributes by address, so where two of the model's parts coincide
    # (z-fighting) the part that won a pixel changed with the process's memory layout, and
    # a resumed run baked other maps than the run it continues.
    model.setBin("unsorted", 0)
    return model


def grid(n: int, low: float, high: float, z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of vertices spanning [low, high]^2 at depth z, two triangles per cell
    (test and experiment scenes)."""
    xs = np.linspace(low, high, n)
    positions = np.array([[x, y, z] for y in xs for x in xs], np.float32)
    triangles = []
    for j in range(n - 1):
        for i in range(n - 1):
            a = j * n + i
            b, c, d = a + 1, a + n, a + n + 1
            triangles += [[a, b, d], [a, d, c]]
    return positions, np.array(triangles, np.int32)


def float_vertex_format(with_color: bool) -> GeomVertexFormat:
    """One interleaved float32 array: vertex, (color,) normal, texcoord, tangent and
    binormal, the last two named as Panda3D's auto-shader looks them up for the default
    UV set."""
    array = GeomVertexArrayFormat()
    array.addColumn(InternalName.getVertex(), 3, Geom.NT_float32, Geom.C_point)
    if with_color:
        array.addColumn(InternalName.getColor(), 4, Geom.NT_float32, Geom.C_color)
    array.addColumn(InternalName.getNormal(), 3, Geom.NT_float32, Geom.C_normal)
    array.addColumn(InternalName.getTexcoord(), 2, Geom.NT_float32, Geom.C_texcoord)
    array.addColumn(InternalName.getTangent(), 3, Geom.NT_float32, Geom.C_vector)
    array.addColumn(InternalName.getBinormal(), 3, Geom.NT_float32, Geom.C_vector)
    return GeomVertexFormat.registerFormat(GeomVertexFormat(array))


def geom_node(name: str, positions, triangles, colors=None, uvs=None, normals=None, tangents=None,
              binormals=None) -> NodePath:
    """A plain Panda3D model (real vertex data) from arrays: references, exports, tests."""
    positions = np.asarray(positions, np.float32)
    # Float colors: the default packed 8-bit color column would quantise the reference.
    vertex_format = float_vertex_format(with_color=True)
    count = len(positions)
    colors = _per_vertex(colors, count, 3, fill=1.0)
    uvs, normals, tangents, binormals = (_per_vertex(values, count, width) for values, width in
                                         ((uvs, 2), (normals, 3), (tangents, 3), (binormals, 3)))
    # The columns in the format's order, one float32 row per vertex, written at once.
    rows = np.concatenate([positions, colors[:, :3], np.ones((count, 1), np.float32), normals, uvs, tangents,
                           binormals], axis=1).astype(np.float32)
    data = GeomVertexData(name, vertex_format, Geom.UH_static)
    data.setNumRows(count)
    array = data.modifyArray(0)
    assert array.getArrayFormat().getStride() == rows.shape[1] * 4
    memoryview(array).cast("B")[:] = rows.tobytes()
    triangles = np.asarray(triangles, np.int64).reshape(-1, 3)
    primitive = GeomTriangles(Geom.UH_static)
    # The index type Panda3D's addVertices would settle on: 16 bits while the indices allow.
    wide = triangles.size and triangles.max() >= 0xffff
    primitive.setIndexType(Geom.NT_uint32 if wide else Geom.NT_uint16)
    if triangles.size:
        indices = primitive.modifyVertices()
        indices.setNumRows(triangles.size)
        memoryview(indices).cast("B")[:] = triangles.astype(np.uint32 if wide else np.uint16).tobytes()
    geom = Geom(data)
    geom.addPrimitive(primitive)
    node = GeomNode(name)
    node.addGeom(geom)
    return NodePath(node)
