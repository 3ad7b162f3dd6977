"""A volume's files: the grid as .npz (float32 ``density`` (N, N, N) and ``color``
(N, N, N, 3), indexed [z, y, x]) and as a Panda3D 3D texture (.txo: RGBA32F, linear RGB in
.rgb and sigma in .a, the layout volume_node draws). Both load back bit-identical; bad
files give one SgeError line naming the problem and the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from panda3d.core import Filename, Texture

from ..errors import SgeError
from ..images import atomic_write
from .kind import check_grid

SUFFIXES = (".npz", ".txo")


def save_volume(path: Path, density: np.ndarray, color: np.ndarray) -> None:
    """Write the grid to ``path`` (.npz or .txo by its suffix), whole or not at all."""
    path = Path(path)
    density, color = check_grid(density, color)
    if path.suffix.lower() == ".npz":
        atomic_write(path, lambda stream: np.savez(stream, density=density, color=color))
    elif path.suffix.lower() == ".txo":
        texture = volume_texture(density, color)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".txo")
        os.close(handle)
        try:
            if not texture.write(Filename.fromOsSpecific(temporary)):
                raise SgeError(f"cannot write the volume {path}; check that its folder is writable")
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    else:
        raise SgeError(f"cannot save a volume as '{path.suffix or path.name}'; name it .npz or .txo")


def load_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(density (N, N, N), colour (N, N, N, 3)) from a .npz or .txo volume file."""
    path = Path(path)
    if not path.is_file():
        raise SgeError(f"volume file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                density, color = data["density"], data["color"]
        except KeyError as missing:
            raise SgeError(f"{path} has no {missing} array; a volume .npz holds 'density' and 'color'") from None
        except Exception as error:  # zip, pickle, header errors
            raise SgeError(f"{path} is not a readable .npz volume ({type(error).__name__}); re-export it") from None
    elif suffix == ".txo":
        texture = Texture()
        if not texture.read(Filename.fromOsSpecific(str(path))) or not texture.hasRamImage():
            raise SgeError(f"{path} is not a readable Panda3D texture (.txo); re-export it")
        density, color = texture_grid(texture, path)
    else:
        raise SgeError(f"cannot read a volume from '{suffix or path.name}'; give a .npz or .txo file")
    try:
        return check_grid(density, color)
    except SgeError as error:
        raise SgeError(f"{path}: {error}") from None


def volume_texture(density: np.ndarray, color: np.ndarray) -> Texture:
    """The grid as one RGBA32F 3D texture (.rgb colour, .a sigma), sampled trilinearly."""
    from .kind import grid_texture
    size = density.shape[0]
    texture = grid_texture("volume", color)  # RGBA32F, clamp, linear
    bgra = np.empty((size, size, size, 4), np.float32)
    bgra[..., 2::-1] = color
    bgra[..., 3] = density
    texture.setRamImage(bgra.tobytes())
    return texture


def texture_grid(texture: Texture, path: Path) -> tuple[np.ndarray, np.ndarray]:
    size = texture.getXSize()
    if (texture.getTextureType() != Texture.TT_3d_texture or texture.getComponentType() != Texture.T_float
            or texture.getNumComponents() != 4 or texture.getYSize() != size or texture.getZSize() != size):
        raise SgeError(f"{path} is not an N x N x N RGBA float 3D texture (a volume .txo from sge); re-export it")
    data = np.frombuffer(bytes(texture.getRamImage()), np.float32).reshape(size, size, size, 4)
    return data[..., 3].copy(), data[..., 2::-1].copy()
