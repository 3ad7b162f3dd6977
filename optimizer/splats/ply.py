"""Splats in and out as the standard 3DGS .ply (what splat viewers and tools read): one
``vertex`` element of float32 properties

    x y z  nx ny nz  f_dc_0 f_dc_1 f_dc_2  opacity  scale_0 scale_1 scale_2  rot_0 rot_1 rot_2 rot_3

(normals zero, as 3DGS writes them; opacity a logit, scales logs, rot a w-first
quaternion; no higher spherical harmonics). ``Splats`` keeps its parameters in exactly
this form, so writing and reading back gives the same bits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SgeError
from ..images import atomic_write

FIELDS = {
    "means": ("x", "y", "z"),
    "normals": ("nx", "ny", "nz"),
    "colors": ("f_dc_0", "f_dc_1", "f_dc_2"),
    "opacities": ("opacity",),
    "log_scales": ("scale_0", "scale_1", "scale_2"),
    "rotations": ("rot_0", "rot_1", "rot_2", "rot_3"),
}
PROPERTY_ORDER = [name for group in FIELDS.values() for name in group]


def write_ply(path, values: dict[str, np.ndarray]) -> None:
    """Write splats (``Splats.values()``: attribute -> (N, width)) as a binary 3DGS .ply,
    atomically."""
    from plyfile import PlyData, PlyElement

    count = len(values["means"])
    columns = {**values, "normals": np.zeros((count, 3), np.float32)}
    for attribute, names in FIELDS.items():
        array = np.asarray(columns[attribute], np.float32).reshape(count, len(names))
        if not np.all(np.isfinite(array)):
            raise SgeError(f"cannot write {Path(path).name}: the splats' {attribute} hold NaN or Inf")
    vertices = np.empty(count, dtype=[(name, "<f4") for name in PROPERTY_ORDER])
    for attribute, names in FIELDS.items():
        array = np.asarray(columns[attribute], np.float32).reshape(count, len(names))
        for column, name in enumerate(names):
            vertices[name] = array[:, column]
    data = PlyData([PlyElement.describe(vertices, "vertex")], text=False, byte_order="<")
    atomic_write(Path(path), data.write)


def read_ply(path) -> dict[str, np.ndarray]:
    """Read a 3DGS .ply into ``Splats``' attributes (float32 (N, width) arrays). Extra
    properties (f_rest_*, others) are ignored. Bad input raises SgeError in one line."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise SgeError(f"{path}: no such file; give the path of a 3DGS .ply")
    try:
        data = PlyData.read(str(path))
        vertices = data["vertex"].data
    except KeyError:
        raise SgeError(f"{path.name}: no 'vertex' element; is it a Gaussian-splat .ply?") from None
    except Exception as error:
        raise SgeError(f"{path.name}: not a readable .ply ({' '.join(str(error).split()) or type(error).__name__}); "
                       f"re-export it") from None
    names = vertices.dtype.names or ()
    missing = [name for name in PROPERTY_ORDER if name not in names and not name.startswith("n")]
    if missing:
        raise SgeError(f"{path.name}: missing the 3DGS properties {', '.join(missing)}; "
                       f"is it a Gaussian-splat .ply (not a mesh or point cloud)?")
    if len(vertices) == 0:
        raise SgeError(f"{path.name}: holds no splats")
    values = {}
    for attribute, fields in FIELDS.items():
        if attribute == "normals":
            continue
        array = np.stack([np.asarray(vertices[name], np.float32) for name in fields], axis=1)
        if not np.all(np.isfinite(array)):
            raise SgeError(f"{path.name}: the {attribute} hold NaN or Inf; fix or re-export the file")
        values[attribute] = array
    return values
