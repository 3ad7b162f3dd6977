"""Assets in and out: finding and reading Panda3D models (the loader's messages caught and
quoted in one-line errors), loading them into arrays, and texture conversions."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import struct
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from panda3d.core import (
    AnimBundleNode,
    Filename,
    GeomNode,
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
    if not _utf8(text) or (path.exists() and not _utf8(str(path.resolve()))):
        raise SgeError(f"the path '{printable_path(path.resolve())}' is not valid UTF-8, which Panda3D cannot open; "
                       f"rename the file (or its folder)")
    if path.is_dir():
        raise SgeError(f"'{text}' is a directory, not a model file; give the model file itself")
    if path.exists() and not path.is_file():  # reading a FIFO would wait forever for a writer
        raise SgeError(f"'{text}' is not a regular file (a pipe, socket or device); give the model file itself")
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


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8: Panda3D's Filename takes UTF-8 only (a name of
    other bytes, which Python keeps as surrogates, raises, and as bytes it crashes)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def printable_path(path) -> str:
    """A path for a message, its non-UTF-8 bytes shown as \\xNN."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


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
        self.handled = False  # the caller dealt with the messages: not passed on

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
    if text and not log.handled:
        Notify.writeString(text)


def read_model(filename: Filename, notes: list[str] | None = None) -> NodePath:
    """Read a model file found by ``find_model``: .egg/.bam/.obj through Panda3D's loader
    (caches off, so an edited file is read again), .gltf/.glb through panda3d-gltf.

    panda3d-gltf is called directly rather than registered with the loader: a
    ``panda3d.loaders`` entry point registered (``LoaderFileTypeRegistry.registerDeferredType``,
    what ShowBase does) after the first model load of a process is ignored, because the
    prc's ``load-file-type p3assimp`` has claimed .gltf/.glb by then; and an exception in
    a Python loader is printed as a traceback by the loader.

    A texture the model names at a path where it is not (a folder of the machine it was
    made on) is looked for by its file name beside the model and in a ``textures/`` folder
    beside it, as asset tools do; one line per texture found that way goes to ``notes``.
    Any failure, and a texture found nowhere, raise SgeError in one line.
    """
    shown = Path(filename.toOsSpecific()).name
    extension = model_extension(filename)
    if Path(filename.toOsSpecific()).is_file():  # not one inside a multifile
        _check_pngs(Path(filename.toOsSpecific()))
        if extension in GLTF_EXTENSIONS:
            _check_gltf_buffers(Path(filename.toOsSpecific()))
    node, textures = _load(filename, shown, extension)
    if textures:
        found = {name: _beside_model(filename, name) for name in textures}
        if all(found.values()):
            for name, replacement in found.items():
                _mount_in_place_of(filename, name, replacement)
                if notes is not None:
                    notes.append(f"'{shown}' names the texture '{name}', which is not there; "
                                 f"using '{replacement}' instead")
            node, textures = _load(filename, shown, extension)
    if textures:
        raise _unreadable_texture(shown, textures[0])
    return NodePath(node)


def _load(filename: Filename, shown: str, extension: str):
    """(the loaded node, the texture names it could not find or read)."""
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
                log.handled = True  # looked for elsewhere, else one line names the first
                return None, textures
            reason = log.reason() or f"{type(error).__name__}: {error}"
            raise SgeError(f"cannot read '{shown}': not a valid {extension[1:]} file ({_one_line(reason)}); "
                           f"check that the file is complete and re-export it") from None
        textures = log.unreadable_textures()
        log.handled = bool(textures)
        if node is None and not textures:
            reason = log.reason() or "Panda3D's loader refused it"
            raise SgeError(f"cannot read '{shown}': not a valid {extension[1:]} file ({_one_line(reason)}); "
                           f"check that the file is complete and re-export it")
    return node, textures


def _beside_model(model: Filename, texture: str) -> Path | None:
    """The image of the file name of ``texture`` beside the model, or in a ``textures/``
    folder beside it (None if in neither)."""
    folder = Path(model.toOsSpecific()).parent
    name = Path(texture).name
    for candidate in (folder / name, folder / "textures" / name):
        if candidate.is_file() and not _same_file(candidate, _where_loader_looked(model, texture)):
            return candidate.resolve()
    return None


def _where_loader_looked(model: Filename, texture: str) -> Path:
    path = Path(texture)
    return path if path.is_absolute() else Path(model.toOsSpecific()).parent / path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _mount_in_place_of(model: Filename, texture: str, replacement: Path) -> None:
    """Make ``replacement`` readable at the path the model names, for Panda3D's texture
    pool (the load retried, and every reload of that texture in this process): its folder
    is mounted read-only on Panda3D's virtual file system where the named folder would be."""
    mount_point = _where_loader_looked(model, texture).parent
    vfs = VirtualFileSystem.getGlobalPtr()
    vfs.mount(Filename.fromOsSpecific(str(replacement.parent)), Filename.fromOsSpecific(str(mount_point)),
              VirtualFileSystem.MF_read_only)


# Image names in a model's text (.egg, .mtl, .gltf) or strings (.bam): a bare token or a quoted name.
_PNG_NAME = re.compile(rb'"([^"\x00-\x1f]+?\.png)"|([^\x00-\x20"\'<>{}()\[\],;=]+?\.png)\b', re.IGNORECASE)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONTROL = re.compile(rb"[\x00-\x1f]")
_LAST_CONTROL = re.compile(rb"[\x00-\x1f][^\x00-\x1f]*\Z")


def _check_pngs(path: Path) -> None:
    """Check with Pillow the PNGs that ``path`` names, beside it or by its path, before
    Panda3D reads them: Panda3D's PNG reader loops forever (logging an error per
    iteration) on a PNG cut inside an ancillary chunk such as tEXt or iCCP. A name this
    does not recognise is left to the loader, as before."""
    sources, checked = [path], set()
    while sources:
        source = sources.pop()
        if not source.is_file() or source.stat().st_size > 256 * 2 ** 20:
            continue
        text = source.read_bytes()
        if source == path and model_extension(path) == ".obj":  # its materials name the textures
            sources += [path.parent / m.decode("utf-8", "replace").strip()
                        for m in re.findall(rb"(?m)^\s*mtllib\s+(.+?)\s*$", text)]
        for quoted, bare in _png_names(text):
            name = (quoted or bare).decode("utf-8", "replace")
            for candidate in (source.parent / name, source.parent / Path(name).name, path.parent / Path(name).name):
                if candidate.is_file():
                    if candidate not in checked:
                        checked.add(candidate)
                        with open(candidate, "rb") as stream:
                            if stream.read(8) == _PNG_SIGNATURE:
                                _verify_png(candidate.read_bytes(), path.name, name)
                    break


def _png_names(text: bytes) -> list[tuple[bytes, bytes]]:
    """``_PNG_NAME.findall(text)``, run only over the stretches of ``text`` between control
    bytes that hold a ".png" (no match can hold a control byte, so the matches are the
    same): over a whole binary model (a .bam of megabytes) the pattern took most of a second."""
    lowered = text.lower()
    matches, at = [], lowered.find(b".png")
    while at >= 0:
        start, back = at, 256
        while True:  # the stretch starts after the last control byte before ``at``
            window = text[max(0, at - back):at]
            last = _LAST_CONTROL.search(window)
            if last or back >= at:
                start = max(0, at - back) + (last.start() + 1 if last else 0)
                break
            back *= 4
        following = _CONTROL.search(text, at)
        end = following.start() if following else len(text)
        matches += _PNG_NAME.findall(text, start, end)
        at = lowered.find(b".png", end)
    return matches


def _verify_png(data: bytes, shown: str, name: str) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as error:
        raise SgeError(f"'{shown}' uses the texture '{name}', which is damaged ({_one_line(error)}); "
                       f"re-save the image as a PNG") from None


def _check_gltf_buffers(path: Path) -> None:
    """Check that a glTF file's buffers hold every byte its buffer views and accessors
    name, and its embedded PNGs are whole: panda3d-gltf copies past the end of a short
    buffer and the process dies (segmentation fault) instead of raising. A file too broken
    to parse is left to panda3d-gltf, which raises."""
    data = path.read_bytes()
    binary = b""
    try:
        if model_extension(path) == ".glb":
            json_length, _ = struct.unpack_from("<II", data, 12)
            document = json.loads(data[20:20 + json_length])
            if len(data) >= 28 + json_length:
                binary_length, _ = struct.unpack_from("<II", data, 20 + json_length)
                binary = data[28 + json_length:28 + json_length + binary_length]
        else:
            document = json.loads(data)
        buffers = document.get("buffers", [])
        views = document.get("bufferViews", [])
        accessors = document.get("accessors", [])
    except Exception:
        return
    try:
        sizes = []
        for index, buffer in enumerate(buffers):
            uri = buffer.get("uri")
            if uri is None:
                held = len(binary) if index == 0 else 0
            elif uri.startswith("data:"):
                held = len(base64.b64decode(uri.split(",", 1)[1]))
            else:
                file = path.parent / urllib.parse.unquote(uri)
                if not file.is_file():
                    raise SgeError(f"'{path.name}' keeps its data in '{uri}', which is missing; put it beside "
                                   f"'{path.name}' or re-export as .glb")
                held = file.stat().st_size
            if held < buffer["byteLength"]:
                where = f" ('{uri}')" if uri and not uri.startswith("data:") else ""
                raise ValueError(f"buffer {index}{where} holds {held} of its {buffer['byteLength']} bytes")
            sizes.append(buffer["byteLength"])
        for index, view in enumerate(views):
            if view.get("byteOffset", 0) + view["byteLength"] > sizes[view["buffer"]]:
                raise ValueError(f"buffer view {index} ends past its buffer")
        for index, accessor in enumerate(accessors):
            if "bufferView" not in accessor or accessor.get("count", 0) == 0:
                continue
            view = views[accessor["bufferView"]]
            element = _GLTF_COMPONENT_BYTES[accessor["componentType"]] * _GLTF_TYPE_COMPONENTS[accessor["type"]]
            end = accessor.get("byteOffset", 0) + view.get("byteStride", element) * (accessor["count"] - 1) + element
            if end > view["byteLength"]:
                raise ValueError(f"accessor {index} ends past its buffer view")
        for index, image in enumerate(document.get("images", [])):
            embedded = b""
            if image.get("uri", "").startswith("data:image/png;base64,"):
                embedded = base64.b64decode(image["uri"].split(",", 1)[1])
            elif "bufferView" in image and views[image["bufferView"]]["buffer"] == 0:
                view = views[image["bufferView"]]
                embedded = binary[view.get("byteOffset", 0):view.get("byteOffset", 0) + view["byteLength"]]
            if embedded.startswith(_PNG_SIGNATURE):
                _verify_png(embedded, path.name, image.get("name") or f"image {index}")
    except SgeError:
        raise
    except Exception as error:
        reason = _one_line(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {_one_line(error)}"
        raise SgeError(f"cannot read '{path.name}': not a valid {model_extension(path)[1:]} file ({reason}); "
                       f"check that the file is complete and re-export it") from None


_GLTF_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_GLTF_TYPE_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


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


def geom_node_paths(model: NodePath) -> list[NodePath]:
    """Every GeomNode of ``model``, the root itself included: a .bam written from a bare
    GeomNode (``NodePath(geom_node).writeBamFile``) loads as that GeomNode, which
    ``findAllMatches("**/+GeomNode")`` leaves out."""
    found = list(model.findAllMatches("**/+GeomNode"))
    return [model, *found] if isinstance(model.node(), GeomNode) else found


def holds_animation(model: NodePath) -> bool:
    """Whether ``model`` holds an animation bundle (an animation file such as
    ``models/panda-walk``: joints' motion, no geometry)."""
    return isinstance(model.node(), AnimBundleNode) or not model.findAllMatches("**/+AnimBundleNode").isEmpty()


def model_texture(model: NodePath):
    """The first texture the model's geometry uses (None if none)."""
    for geom_path in geom_node_paths(model):
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
