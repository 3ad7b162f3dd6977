"""Assets in and out: finding and reading Panda3D models (the loader's messages caught and
quoted in one-line errors), loading them into arrays, and texture conversions."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from panda3d.core import (
    Filename,
    GeomVertexReader,
    Loader,
    LoaderOptions,
    NodePath,
    Notify,
    StringStream,
    Texture,
    TextureAttrib,
    VirtualFileSystem,
    getModelPath,
)

from .errors import SgeError

# Panda3D reads .egg and .bam itself, .obj through its bundled assimp plugin; .gltf/.glb go
# to panda3d-gltf (read_model says why not through the loader). ".pz" (zlib) is unwrapped.
MODEL_EXTENSIONS = (".egg", ".bam", ".gltf", ".glb", ".obj")
GLTF_EXTENSIONS = (".gltf", ".glb")
PZ_EXTENSIONS = (".egg", ".bam")  # the formats Panda3D's loader reads through zlib
_SUPPORTED = "give a .egg, .bam, .obj, .gltf or .glb file (.egg and .bam may be .pz-compressed)"


def model_extension(filename) -> str:
    """The format's extension of a model file name, lower case, ".pz" looked through:
    "panda.egg.pz" -> ".egg"."""
    name = str(filename).lower()
    if name.endswith(".pz"):
        name = name[:-3]
    return Path(name).suffix


def model_stem(filename) -> str:
    """A model file's name without its extensions: "panda.egg.pz" -> "panda"."""
    name = Path(str(filename)).name
    if name.lower().endswith(".pz"):
        name = name[:-3]
    return Path(name).stem


def find_model(source) -> Filename:
    """The model file ``source`` names: a path on disk, or else a name on Panda3D's
    model-path (``models/panda``, extension optional, ".pz" found too)."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        raise SgeError(f"'{text}' is a directory, not a model file; give the model file itself")
    if path.is_file():
        filename = Filename.fromOsSpecific(str(path.resolve()))
    else:
        filename = _on_model_path(text)
        if filename is None:
            raise SgeError(f"cannot find '{text}': no such file, and no model of that name on Panda3D's model-path")
    compressed = str(filename).lower().endswith(".pz")
    if model_extension(filename) not in (PZ_EXTENSIONS if compressed else MODEL_EXTENSIONS):
        raise SgeError(f"'{text}' is not a model format this reads ({model_extension(filename) or 'no extension'}); "
                       f"{_SUPPORTED}")
    return filename


def _on_model_path(name: str) -> Filename | None:
    """``name`` resolved on the model-path, trying each model extension when it has none
    (as Panda3D's loader does for ``models/panda``)."""
    vfs = VirtualFileSystem.getGlobalPtr()
    stems = [name] if model_extension(name) else [name + extension for extension in MODEL_EXTENSIONS]
    for candidate in (text for stem in stems for text in (stem, stem + ".pz")):
        filename = Filename(candidate)
        if vfs.resolveFilename(filename, getModelPath().getValue()) and not vfs.isDirectory(filename):
            filename.makeAbsolute()
            # The VFS finds "x.egg" when only "x.egg.pz" exists (vfs-implicit-pz): name the real file.
            if not Path(filename.toOsSpecific()).exists() and Path(filename.toOsSpecific() + ".pz").is_file():
                filename = Filename(filename.getFullpath() + ".pz")
            return filename
    return None


class LoaderLog:
    """What Panda3D's notify printed while a model loaded (see ``loader_messages``)."""

    def __init__(self):
        self.stream = StringStream()

    @property
    def lines(self) -> list[str]:
        text = bytes(self.stream.getData()).decode("utf-8", "replace")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def reason(self) -> str | None:
        """The first error in one line, the notify prefix dropped; an egg syntax error as
        "syntax error at line L, column C"."""
        lines = self.lines
        for index, line in enumerate(lines):
            located = re.match(r"Error in .* at (line \d+, column \d+):$", line)
            if located:  # the egg parser prints: Error in F at line L, column C: / source line / ^ / message
                after_caret = [lines[i + 1] for i in range(index + 1, len(lines) - 1) if lines[i] == "^"]
                return f"{after_caret[0] if after_caret else 'syntax error'} at {located.group(1)}"
        for line in lines:
            if "error" in line.lower() or line.startswith("Assertion failed"):
                return re.sub(r"^:(?:\w+:)*(\w+)\(error\): ", r"\1: ", line)  # ":pnmimage:png(error): " -> "png: "
        return None

    def unreadable_textures(self) -> list[str]:
        """Texture files Panda3D's texture pool could not find or read."""
        found = []
        for line in self.lines:
            match = (re.search(r'Unable to find texture "(.+?)"', line)
                     or re.search(r"couldn't read: (.+)$", line)
                     or re.search(r'Texture "(.+?)" does not exist', line))
            if match and match.group(1) not in found:
                found.append(match.group(1))
        return found


@contextmanager
def loader_messages():
    """Catch Panda3D's notify output (the loader's errors) in a ``LoaderLog`` while the
    block runs. When the block succeeds the messages are passed on to where they would
    have gone; when it raises, the raised error is expected to quote them."""
    notify = Notify.ptr()
    previous = notify.getOstreamPtr()
    log = LoaderLog()
    notify.setOstreamPtr(log.stream, False)
    try:
        yield log
    finally:
        notify.setOstreamPtr(previous, False)
    text = bytes(log.stream.getData()).decode("utf-8", "replace")  # reached only when the block succeeded
    if text:
        Notify.writeString(text)


def read_model(filename: Filename) -> NodePath:
    """Read a model file found by ``find_model``: .egg/.bam/.obj through Panda3D's loader
    (caches off, so an edited file is read again), .gltf/.glb through panda3d-gltf.

    panda3d-gltf is called directly rather than registered with the loader: a
    ``panda3d.loaders`` entry point registered (``LoaderFileTypeRegistry.registerDeferredType``,
    what ShowBase does) after the first model load of a process is ignored, because the
    prc's ``load-file-type p3assimp`` has claimed .gltf/.glb by then; and an exception in
    a Python loader is printed as a traceback by the loader. Any failure, and a texture
    the model names but that cannot be read, raise SgeError in one line.
    """
    shown = Path(filename.toOsSpecific()).name
    extension = model_extension(filename)
    with loader_messages() as log:
        try:
            if extension in GLTF_EXTENSIONS:
                import gltf  # panda3d-gltf; imported here: loading anything else does not need it

                node = gltf.load_model(filename, gltf.GltfSettings())
            else:
                options = LoaderOptions(LoaderOptions.LF_report_errors | LoaderOptions.LF_no_cache)
                node = Loader.getGlobalPtr().loadSync(filename, options)
        except Exception as error:  # panda3d-gltf fails on bad input with anything (KeyError, struct.error, ...)
            textures = log.unreadable_textures()
            if textures:
                raise _unreadable_texture(shown, textures[0]) from None
            reason = log.reason() or f"{type(error).__name__}: {error}"
            raise SgeError(f"cannot read '{shown}': not a valid {extension[1:]} file ({_one_line(reason)}); "
                           f"check that the file is complete and re-export it") from None
        textures = log.unreadable_textures()
        if node is None:
            reason = log.reason() or "Panda3D's loader refused it"
            raise SgeError(f"cannot read '{shown}': not a valid {extension[1:]} file ({_one_line(reason)}); "
                           f"check that the file is complete and re-export it")
        if textures:
            raise _unreadable_texture(shown, textures[0])
    return NodePath(node)


def _unreadable_texture(shown: str, texture: str) -> SgeError:
    return SgeError(f"'{shown}' uses the texture '{texture}', which cannot be found or read; put the image where "
                    f"the model expects it (beside the model or on Panda3D's model-path) or fix its path in the model")


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_model(source: str) -> NodePath:
    """A model from a file path, or a name on Panda3D's model-path (``models/smiley``);
    a path that exists on disk wins."""
    return read_model(find_model(source))


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
    """A Panda3D 2D texture as linear RGB floats (H, W, 3), row 0 at v = 0: 8- and 16-bit
    images are taken as sRGB-encoded (Panda3D's convention for colour maps, glTF's for
    base colour), float images as linear already; compressed images are decompressed."""
    if texture.getRamImageCompression() != Texture.CM_off:
        texture = texture.makeCopy()
        texture.uncompressRamImage()
    height, width = texture.getYSize(), texture.getXSize()
    component_types = {Texture.T_unsigned_byte: np.uint8, Texture.T_unsigned_short: np.uint16,
                       Texture.T_float: np.float32}
    dtype = component_types.get(texture.getComponentType())
    data = np.frombuffer(bytes(texture.getRamImageAs("RGB")), dtype or np.uint8)
    if dtype is None or data.size != height * width * 3:
        where = texture.getFullpath().toOsSpecific() if texture.hasFullpath() else "embedded"
        raise SgeError(f"texture '{texture.getName()}' ({where}) has no readable RGB image; "
                       f"re-export it as an 8-bit PNG")
    data = data.reshape(height, width, 3)
    if dtype == np.float32:
        return data.copy()
    if dtype == np.uint16:
        return srgb8_to_linear(data.astype(np.float64) * (255.0 / 65535.0))
    return srgb8_to_linear(data)
