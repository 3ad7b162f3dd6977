"""Images out of the optimizer: linear float renders -> 8-bit sRGB PNG files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear RGB(A) floats in [0, 1] -> sRGB-encoded floats (alpha, if any, is dropped)."""
    c = np.clip(np.asarray(linear, np.float64)[..., :3], 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded floats in [0, 1] -> linear floats."""
    c = np.clip(np.asarray(srgb, np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB(A) floats -> 8-bit sRGB (alpha, if any, is dropped)."""
    return np.round(linear_to_srgb(linear).astype(np.float64) * 255.0).astype(np.uint8)


def default_mode(mode: int) -> int:
    """``mode`` less the process's umask: what open() or mkdir() would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def atomic_write(path: Path, write) -> None:
    """``write(stream)`` into a temporary file beside ``path``, then rename it into place:
    readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, default_mode(0o666))  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def save_png(path: Path, rgb8: np.ndarray) -> None:
    """Write an 8-bit RGB image as PNG, atomically."""
    atomic_write(path, lambda stream: Image.fromarray(rgb8).save(stream, format="PNG"))


def grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized uint8 RGB images into one, rows top to bottom."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    out = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            out[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = image
    return out
