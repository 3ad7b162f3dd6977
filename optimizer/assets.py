"""Assets in and out: loading Panda3D models into arrays, and texture conversions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from panda3d.core import (
    Filename,
    GeomVertexReader,
    Loader,
    LoaderOptions,
    NodePath,
    TextureAttrib,
    getModelPath,
)

from .errors import SgeError


def load_model(source: str) -> NodePath:
    """A model from a file path, or a name on Panda3D's model-path (``models/smiley``);
    a path that exists on disk wins."""
    path = Path(source)
    filename = Filename.fromOsSpecific(str(path.resolve())) if path.exists() else Filename(source)
    if path.exists() and path.is_dir():
        raise SgeError(f"{source} is a directory, not a model file; give the model file itself")
    options = LoaderOptions(LoaderOptions.LF_search | LoaderOptions.LF_report_errors | LoaderOptions.LF_no_cache)
    node = Loader.getGlobalPtr().loadSync(filename, options)
    if node is None:
        where = "on disk" if path.exists() else f"on disk or on Panda3D's model-path ({getModelPath()})"
        raise SgeError(f"could not load the model '{source}': not found {where}, or not a format Panda3D reads")
    return NodePath(node)


def mesh_arrays(model: NodePath) -> dict[str, np.ndarray]:
    """Every triangle of ``model`` (transforms applied) as arrays: positions, normals, uvs
    (V, 3/3/2) and triangles (T, 3)."""
    model = model.copyTo(NodePath("flatten"))
    model.flattenStrong()
    positions, normals, uvs, triangles = [], [], [], []
    offset = 0
    for geom_path in model.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            geom = node.getGeom(g).decompose()
            data = geom.getVertexData()
            count = data.getNumRows()
            readers = {name: GeomVertexReader(data, name) for name in ("vertex", "normal", "texcoord")}
            for name, out, width in (("vertex", positions, 3), ("normal", normals, 3), ("texcoord", uvs, 2)):
                reader = readers[name]
                if not data.getFormat().hasColumn(name):
                    out.append(np.zeros((count, width), np.float32))
                    continue
                values = np.empty((count, width), np.float32)
                for row in range(count):
                    values[row] = (reader.getData3 if width == 3 else reader.getData2)()
                out.append(values)
            for p in range(geom.getNumPrimitives()):
                primitive = geom.getPrimitive(p)
                vertices = np.array([primitive.getVertex(i) for i in range(primitive.getNumVertices())], np.int64)
                triangles.append(vertices.reshape(-1, 3) + offset)
            offset += count
    if not triangles or offset == 0:
        raise SgeError("the model has no triangles; give a model with at least one triangle")
    return {"positions": np.concatenate(positions), "normals": np.concatenate(normals),
            "uvs": np.concatenate(uvs), "triangles": np.concatenate(triangles).astype(np.int32)}


def model_texture(model: NodePath):
    """The first texture the model's geometry uses (None if none)."""
    for geom_path in model.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            attrib = node.getGeomState(g).getAttrib(TextureAttrib)
            if attrib is not None and attrib.getTexture() is not None:
                return attrib.getTexture()
    return None


def srgb8_to_linear(values: np.ndarray) -> np.ndarray:
    c = np.asarray(values, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def texture_linear_rgb(texture) -> np.ndarray:
    """An 8-bit sRGB Panda3D texture as linear RGB floats (H, W, 3), row 0 at v = 0."""
    height, width = texture.getYSize(), texture.getXSize()
    data = np.frombuffer(bytes(texture.getRamImageAs("RGB")), np.uint8)
    if data.size != height * width * 3:
        raise SgeError(f"texture '{texture.getName()}' has no readable 8-bit image; re-export it as PNG")
    return srgb8_to_linear(data.reshape(height, width, 3))
