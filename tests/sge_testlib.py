"""Small scene builders and pixel geometry shared by the tests (not a test module)."""

from __future__ import annotations

import numpy as np


def pixel_centres(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """NDC (x, y) of every pixel centre as (H, W) arrays, row 0 at the top of the image
    (as ``optimizer.gpu.read_texture`` returns images)."""
    x = (np.arange(width) + 0.5) / width * 2.0 - 1.0
    y = 1.0 - (np.arange(height) + 0.5) / height * 2.0
    return np.meshgrid(x, y)

def barycentrics(corners: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (..., 3) of points (x, y) in the 2D triangle ``corners``."""
    (x0, y0), (x1, y1), (x2, y2) = np.asarray(corners, np.float64)[:, :2]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    b0 = ((x1 - x) * (y2 - y) - (x2 - x) * (y1 - y)) / area
    b1 = ((x2 - x) * (y0 - y) - (x0 - x) * (y2 - y)) / area
    return np.stack([b0, b1, 1.0 - b0 - b1], axis=-1)

def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))

def accumulator_of(context, parameter_set, parity: int):
    """(sum_p w_p Delta_p, sum_p w_p) per element, from the accumulator half ``parity``
    and the channel ``parameter_set`` reads (domains may keep one channel per kind)."""
    from optimizer.sge import read_accumulator
    channel = getattr(parameter_set, "channel", None)
    if channel is None:
        return read_accumulator(context, parameter_set.domain, parity)
    return read_accumulator(context, parameter_set.domain, parity, channel)
