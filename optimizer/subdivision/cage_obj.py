"""Control cages as Wavefront .obj: read with their polygons kept (Panda3D's loaders
triangulate, which would turn a quad cage into another surface under Catmull-Clark), and
written the same way (``NAME.cage.obj``: quads stay quads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SgeError
from ..images import atomic_write


def read_cage(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions (C, 3), faces (F, 4) with -1 in the 4th column of a triangle, face
    corner UVs (F, 4, 2)) of an .obj of triangles and quads with texture coordinates.
    Larger polygons are refused, as are faces without UVs; one clear line each."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SgeError(f"cannot read the cage '{path}': {error.strerror}; give an .obj file of triangles and quads") \
            from None
    if path.suffix.lower() != ".obj":
        raise SgeError(f"the cage '{path}' is not an .obj; export the cage as Wavefront .obj (its quads are kept)")
    positions, texcoords, faces, face_uvs = [], [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if fields[0] == "v":
                positions.append([float(x) for x in fields[1:4]])
            elif fields[0] == "vt":
                texcoords.append([float(x) for x in fields[1:3]])
            elif fields[0] == "f":
                corners = [corner.split("/") for corner in fields[1:]]
                if not 3 <= len(corners) <= 4:
                    raise SgeError(f"the cage '{path}' line {number} has a {len(corners)}-sided face; a cage takes "
                                   f"triangles and quads (split larger polygons in your modeller)")
                if any(len(corner) < 2 or not corner[1] for corner in corners):
                    raise SgeError(f"the cage '{path}' line {number} has a face without texture coordinates; "
                                   f"unwrap the cage (vt) before giving it")
                index = [_obj_index(int(corner[0]), len(positions)) for corner in corners]
                uv = [_obj_index(int(corner[1]), len(texcoords)) for corner in corners]
                faces.append(index + [-1] * (4 - len(index)))
                face_uvs.append(uv + [uv[0]] * (4 - len(uv)))
        except (ValueError, IndexError):
            raise SgeError(f"the cage '{path}' line {number} is not valid .obj ({line.strip()[:40]!r}); "
                           f"re-export the cage") from None
    if not faces:
        raise SgeError(f"the cage '{path}' has no faces; give an .obj of triangles and quads")
    positions = np.asarray(positions, np.float64)
    texcoords = np.asarray(texcoords, np.float64)
    faces = np.asarray(faces, np.int64)
    if not np.all(np.isfinite(positions)) or not np.all(np.isfinite(texcoords)):
        raise SgeError(f"the cage '{path}' has NaN or infinite coordinates; fix the file")
    uvs = texcoords[np.asarray(face_uvs, np.int64)]
    used = np.unique(faces[faces >= 0])
    remap = np.full(len(positions), -1, np.int64)
    remap[used] = np.arange(len(used))
    faces = np.where(faces >= 0, remap[np.maximum(faces, 0)], -1)
    return positions[used], faces, uvs


def _obj_index(index: int, count: int) -> int:
    resolved = index - 1 if index > 0 else count + index
    if not 0 <= resolved < count:
        raise IndexError(index)
    return resolved


def write_cage(path: Path, positions: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, mtl_name: str | None = None,
               material: str | None = None) -> None:
    """Write a cage as .obj: its polygons as they are (a quad stays a quad), a vt per
    face corner."""
    lines = []
    if mtl_name is not None:
        lines += [f"mtllib {mtl_name}", f"usemtl {material}"]
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(positions, np.float64).tolist()]
    vt_index = 1
    polygons = []
    for face, uvs in zip(np.asarray(faces), np.asarray(face_uvs, np.float64)):
        corners = [i for i in face.tolist() if i >= 0]
        for u, v in uvs[:len(corners)].tolist():
            lines.append(f"vt {u!r} {v!r}")
        polygons.append("f " + " ".join(f"{i + 1}/{vt_index + k}" for k, i in enumerate(corners)))
        vt_index += len(corners)
    text = "\n".join(lines + polygons) + "\n"
    atomic_write(Path(path), lambda stream: stream.write(text.encode("utf-8")))
