"""Small procedural test assets, written to disk by the tests themselves (no binary files
in the repository): a bumpy textured sphere, a checker texture, and writers for .obj
(+ .mtl + .png) and binary glTF (.glb), plus deliberately broken files."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def _icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: 20 * 4**subdivisions triangles, counter-clockwise seen from outside."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    positions = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
                 (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    positions = [np.array(p, np.float64) / np.linalg.norm(p) for p in positions]
    triangles = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
                 (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
                 (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    for _ in range(subdivisions):
        midpoints: dict[tuple[int, int], int] = {}

        def midpoint(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in midpoints:
                m = positions[a] + positions[b]
                positions.append(m / np.linalg.norm(m))
                midpoints[key] = len(positions) - 1
            return midpoints[key]

        refined = []
        for a, b, c in triangles:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            refined += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        triangles = refined
    return np.array(positions), np.array(triangles, np.int32)


def vertex_normals(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals."""
    corners = positions[triangles]
    face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(positions, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def bumpy_sphere(subdivisions: int = 3, bumps: float = 0.15, seed: int = 0):
    """An icosphere (1280 triangles at ``subdivisions`` = 3) whose radius varies by a
    smooth random sum of a few low-frequency waves, ``bumps`` at most.

    Returns positions (V, 3), triangles (T, 3), uvs (V, 2) from a spherical mapping
    (u = longitude, v = latitude, 0 at the south pole; the seam is left distorted) and
    area-weighted normals (V, 3), all float32 but triangles int32.
    """
    directions, triangles = _icosphere(subdivisions)
    rng = np.random.default_rng(seed)
    waves = rng.normal(size=(4, 3)) * 2.5
    phases = rng.uniform(0.0, 2.0 * np.pi, 4)
    field = np.sin(directions @ waves.T + phases).mean(axis=1)  # in [-1, 1]
    positions = directions * (1.0 + bumps * field)[:, None]
    u = np.arctan2(directions[:, 1], directions[:, 0]) / (2.0 * np.pi) + 0.5
    v = np.arcsin(np.clip(directions[:, 2], -1.0, 1.0)) / np.pi + 0.5
    uvs = np.stack([u, v], axis=1)
    normals = vertex_normals(positions, triangles)
    return (positions.astype(np.float32), triangles, uvs.astype(np.float32), normals.astype(np.float32))


def ridged_torus(segments: int = 48, sides: int = 24, ridges: int = 12, depth: float = 0.12):
    """A torus (major radius 1, tube radius 0.4, axis +Z) whose tube swells and narrows
    ``ridges`` times around the axis by ``depth`` of its radius: ridges across the tube,
    2 * segments * sides triangles (2304 by default), counter-clockwise from outside.
    A low-poly LOD cannot follow the ridges, so its normal map carries them, and they run
    across both texture axes of any atlas: a map read with a flipped axis shows.

    Returns positions (V, 3), triangles (T, 3), uvs (V, 2) (u around the axis, v around
    the tube; the seams are closed, so they wrap) and area-weighted normals (V, 3)."""
    major = np.arange(segments) * 2.0 * np.pi / segments
    minor = np.arange(sides) * 2.0 * np.pi / sides
    theta, phi = np.meshgrid(major, minor, indexing="ij")
    tube = 0.4 * (1.0 + depth * np.sin(ridges * theta))
    ring = 1.0 + tube * np.cos(phi)
    positions = np.stack([ring * np.cos(theta), ring * np.sin(theta), tube * np.sin(phi)], axis=-1).reshape(-1, 3)
    index = np.arange(segments * sides).reshape(segments, sides)
    a, b = index, np.roll(index, -1, axis=0)  # b: the next segment around the axis
    c, d = np.roll(a, -1, axis=1), np.roll(b, -1, axis=1)  # the next side around the tube
    triangles = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    uvs = np.stack([theta / (2.0 * np.pi), phi / (2.0 * np.pi)], axis=-1).reshape(-1, 2)
    normals = vertex_normals(positions, triangles)
    return (positions.astype(np.float32), triangles.astype(np.int32), uvs.astype(np.float32),
            normals.astype(np.float32))


def checker_texture(size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8 image, row 0 at the top: an 8 x 8 checker whose light cells
    carry a red (left to right) / green (top to bottom) gradient and dark cells a blue
    one, so every corner has a different colour and a flipped image is detectable."""
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    cells = ((np.arange(size)[:, None] * 8 // size) + (np.arange(size)[None, :] * 8 // size)) % 2 == 0
    light = np.stack([40 + 215 * x, 40 + 215 * y, np.full_like(x, 60)], axis=-1)
    dark = np.stack([np.full_like(x, 20), 30 + 60 * x, 80 + 175 * (1 - y)], axis=-1)
    return np.where(cells[..., None], light, dark).round().astype(np.uint8)


def write_png(path, image_rgb8: np.ndarray) -> Path:
    path = Path(path)
    Image.fromarray(np.asarray(image_rgb8, np.uint8), "RGB").save(path)
    return path


def write_obj(path, positions, triangles, uvs=None, normals=None, texture_png: str | None = None,
              texture_rgb8: np.ndarray | None = None) -> Path:
    """A Wavefront .obj; with ``texture_png`` (a file name beside the .obj) also a .mtl
    whose material maps it (``map_Kd``), the PNG written from ``texture_rgb8`` when given
    (else left to exist, or not). ``uvs`` are in OBJ/GL convention (v = 0 at the image's
    bottom)."""
    path = Path(path)
    lines = []
    if texture_png is not None:
        mtl = path.with_suffix(".mtl")
        mtl.write_text(f"newmtl textured\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nmap_Kd {texture_png}\n")
        if texture_rgb8 is not None:
            write_png(path.parent / texture_png, texture_rgb8)
        lines += [f"mtllib {mtl.name}", "usemtl textured"]
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(positions, np.float64).tolist()]
    if uvs is not None:
        lines += [f"vt {u!r} {v!r}" for u, v in np.asarray(uvs, np.float64).tolist()]
    if normals is not None:
        lines += [f"vn {x!r} {y!r} {z!r}" for x, y, z in np.asarray(normals, np.float64).tolist()]
    for triangle in np.asarray(triangles, np.int64) + 1:
        if uvs is not None and normals is not None:
            corners = [f"{i}/{i}/{i}" for i in triangle]
        elif uvs is not None:
            corners = [f"{i}/{i}" for i in triangle]
        elif normals is not None:
            corners = [f"{i}//{i}" for i in triangle]
        else:
            corners = [str(i) for i in triangle]
        lines.append("f " + " ".join(corners))
    path.write_text("\n".join(lines) + "\n")
    return path


def _padded(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def textured_bumpy_obj(folder) -> Path:
    """The tests' usual job source: the bumpy sphere (1280 triangles, bumps 0.25) as
    folder/bumpy.obj with its .mtl and a 64^2 checker texture (checker.png)."""
    positions, triangles, uvs, normals = bumpy_sphere(3, 0.25)
    return write_obj(Path(folder) / "bumpy.obj", positions, triangles, uvs, normals, texture_png="checker.png",
                     texture_rgb8=checker_texture(64))


def write_glb(path, positions, triangles, uvs=None, normals=None, texture_rgb8: np.ndarray | None = None) -> Path:
    """A binary glTF 2.0 file: one mesh, one primitive, one material (with the PNG of
    ``texture_rgb8`` embedded as its baseColorTexture when given).

    Arguments are in Panda3D's conventions, converted to glTF's on the way out so that
    loading the file gives them back: positions and normals z-up (glTF is y-up:
    (x, y, z) -> (x, z, -y)), uvs with v = 0 at the image's bottom (glTF: at the top).
    """
    positions = np.asarray(positions, np.float32)
    to_y_up = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float32)
    attributes = {"POSITION": positions @ to_y_up.T}
    if normals is not None:
        attributes["NORMAL"] = np.asarray(normals, np.float32) @ to_y_up.T
    if uvs is not None:
        uvs = np.asarray(uvs, np.float32)
        attributes["TEXCOORD_0"] = np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1)
    binary = bytearray()
    views, accessors = [], []

    def add_view(data: bytes, target: int | None = None) -> int:
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)})
        if target is not None:
            views[-1]["target"] = target
        binary.extend(_padded(data, b"\0"))
        return len(views) - 1

    primitive_attributes = {}
    for name, values in attributes.items():
        values = np.ascontiguousarray(values, np.float32)
        accessor = {"bufferView": add_view(values.tobytes(), 34962), "componentType": 5126,
                    "count": len(values), "type": {2: "VEC2", 3: "VEC3"}[values.shape[1]]}
        if name == "POSITION":
            accessor.update(min=values.min(axis=0).tolist(), max=values.max(axis=0).tolist())
        accessors.append(accessor)
        primitive_attributes[name] = len(accessors) - 1
    indices = np.ascontiguousarray(triangles, np.uint32).ravel()
    accessors.append({"bufferView": add_view(indices.tobytes(), 34963), "componentType": 5125,
                      "count": int(indices.size), "type": "SCALAR"})
    material = {"name": "surface", "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1],
                                                            "metallicFactor": 0.0, "roughnessFactor": 1.0}}
    document = {"asset": {"version": "2.0", "generator": "panda3d-sge tests/procedural.py"},
                "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": "surface"}],
                "meshes": [{"name": "surface", "primitives": [
                    {"attributes": primitive_attributes, "indices": len(accessors) - 1, "material": 0, "mode": 4}]}],
                "materials": [material], "accessors": accessors}
    if texture_rgb8 is not None:
        png = io.BytesIO()
        Image.fromarray(np.asarray(texture_rgb8, np.uint8), "RGB").save(png, format="PNG")
        document["images"] = [{"bufferView": add_view(png.getvalue()), "mimeType": "image/png", "name": "checker"}]
        document["samplers"] = [{"magFilter": 9729, "minFilter": 9729, "wrapS": 10497, "wrapT": 10497}]
        document["textures"] = [{"source": 0, "sampler": 0}]
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    document["bufferViews"] = views
    document["buffers"] = [{"byteLength": len(binary)}]
    json_chunk = _padded(json.dumps(document).encode(), b" ")
    bin_chunk = bytes(binary)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    path = Path(path)
    path.write_bytes(struct.pack("<III", 0x46546C67, 2, total)
                     + struct.pack("<II", len(json_chunk), 0x4E4F534A) + json_chunk
                     + struct.pack("<II", len(bin_chunk), 0x004E4942) + bin_chunk)
    return path


EGG_GARBAGE = "<CoordinateSystem> { Z-up }\n<Group> broken { <VertexPool> pool { <Vertex> 0 { 1 2 \n"


def write_corrupt(path, kind: str) -> Path:
    """A broken asset at ``path``: ``kind`` is "truncated-obj" (cut inside its vertex
    list), "truncated-glb" (cut in half), "garbage-egg" (an unterminated egg),
    "points-only-obj" (vertices, no faces), "lines-only-egg" (a polyline, no polygons)
    or "nan-obj" (a triangle with a NaN coordinate)."""
    path = Path(path)
    positions, triangles, uvs, normals = bumpy_sphere(1)
    if kind == "truncated-obj":
        write_obj(path, positions, triangles, uvs, normals)
        text = path.read_text()
        path.write_text(text[: text.index("vt ") // 2])
    elif kind == "truncated-glb":
        write_glb(path, positions, triangles, uvs, normals, checker_texture(16))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage-egg":
        path.write_text(EGG_GARBAGE)
    elif kind == "points-only-obj":
        path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in positions[:10]))
    elif kind == "lines-only-egg":
        path.write_text("<CoordinateSystem> { Z-up }\n<Group> lines {\n  <VertexPool> pool {\n"
                        "    <Vertex> 0 { 0 0 0 }\n    <Vertex> 1 { 1 0 0 }\n    <Vertex> 2 { 1 1 0 }\n  }\n"
                        "  <Line> { <VertexRef> { 0 1 2 <Ref> { pool } } }\n}\n")
    elif kind == "nan-obj":
        # assimp reads "-nan" as NaN (a bare "nan" is a syntax error to it)
        path.write_text("v 0 0 0\nv 1 0 0\nv 0 -nan 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")
    else:
        raise ValueError(f"unknown kind of corrupt file {kind!r}")
    return path
