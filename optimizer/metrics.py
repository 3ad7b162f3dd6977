"""Image metrics as SPEC.md ("How figures are measured") defines them, numpy only.

Every image metric takes 8-bit sRGB images, (H, W, 3) uint8 (or (H, W)), and scores them
over the pixels a view covers: those covered by the reference or by the result, so that
background both leave empty counts neither for nor against a result. A view in which
neither covers a pixel compares two empty images: identical, PSNR_IDENTICAL and SSIM 1.0.
"""

from __future__ import annotations

import numpy as np

PSNR_IDENTICAL = 100.0  # dB reported for identical 8-bit images (JSON has no infinity)

# SSIM as Wang, Bovik, Sheikh & Simoncelli (2004) define it.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_RANGE = 255.0


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two 8-bit images over ``mask`` (all pixels when None); identical
    images (or an empty mask) score PSNR_IDENTICAL, which also caps the value."""
    difference = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        difference = difference[mask]
    mse = float(difference.mean()) if difference.size else 0.0
    return PSNR_IDENTICAL if mse == 0.0 else min(PSNR_IDENTICAL, float(10.0 * np.log10(255.0 ** 2 / mse)))


def psnr_covered(result: np.ndarray, reference: np.ndarray, covered: np.ndarray) -> float:
    """PSNR of a view: ``result`` and ``reference`` (H, W, 3) uint8 sRGB, over ``covered``
    (H, W) bool, the pixels covered by the reference or the result. Nothing covered:
    PSNR_IDENTICAL."""
    _check_view(result, reference, covered)
    return psnr(result, reference, np.asarray(covered, bool))


def ssim_covered(result: np.ndarray, reference: np.ndarray, covered: np.ndarray) -> float:
    """Mean SSIM of a view over the bounding box of ``covered`` (shapes as psnr_covered).

    SSIM after Wang et al. 2004: an 11x11 Gaussian window of sigma 1.5, K1 = 0.01,
    K2 = 0.03, L = 255, on the 8-bit values; computed per channel and averaged over the
    box's pixels and the channels. The box is padded by 5 pixels with numpy's "reflect"
    mode (mirrored about the edge pixel) so that the SSIM map has one value per box pixel,
    edge pixels weigh as much as inner ones, no background beyond the box is read, and
    boxes smaller than the window still work. 1.0 for identical images, and when nothing
    is covered.
    """
    _check_view(result, reference, covered)
    rows, columns = np.nonzero(np.asarray(covered, bool))
    if rows.size == 0:
        return 1.0
    box = np.s_[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    x = _channels_last(result)[box]
    y = _channels_last(reference)[box]
    return float(np.mean([_ssim_map(x[..., c], y[..., c]).mean() for c in range(x.shape[-1])]))


def silhouette_iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """|A & B| / |A | B| of two boolean masks of one shape; 1.0 when both are empty."""
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def summarize(values) -> float:
    """One figure from a metric's per-view values: their mean."""
    values = np.asarray(list(values), np.float64)
    if values.size == 0:
        raise ValueError("no values to summarize")
    return float(values.mean())


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The 1-D normalized Gaussian whose outer product is SSIM's 2-D window."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    weights = np.exp(-offsets ** 2 / (2.0 * sigma ** 2))
    return weights / weights.sum()


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two equally sized 2-D float64 arrays (reflect-padded windows)."""
    c1 = (SSIM_K1 * SSIM_RANGE) ** 2
    c2 = (SSIM_K2 * SSIM_RANGE) ** 2
    mu_x, mu_y = _gaussian_filter(x), _gaussian_filter(y)
    # Windowed (co)variances as E[xy] - E[x]E[y]; float64 keeps the cancellation error
    # ~1e-11 of 255^2, far below the constants c1, c2.
    sigma_xx = _gaussian_filter(x * x) - mu_x * mu_x
    sigma_yy = _gaussian_filter(y * y) - mu_y * mu_y
    sigma_xy = _gaussian_filter(x * y) - mu_x * mu_y
    return ((2.0 * mu_x * mu_y + c1) * (2.0 * sigma_xy + c2)) / \
           ((mu_x * mu_x + mu_y * mu_y + c1) * (sigma_xx + sigma_yy + c2))


def _gaussian_filter(image: np.ndarray) -> np.ndarray:
    """The 11x11 Gaussian window applied at every pixel, as two 1-D passes (the window is
    separable) over the reflect-padded image; output the input's shape."""
    weights = gaussian_window()
    radius = len(weights) // 2
    padded = np.pad(image, radius, mode="reflect")
    height, width = image.shape
    rows = sum(w * padded[k:k + height, :] for k, w in enumerate(weights))
    return sum(w * rows[:, k:k + width] for k, w in enumerate(weights))


def _channels_last(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float64)
    return image[..., None] if image.ndim == 2 else image


def _check_view(result: np.ndarray, reference: np.ndarray, covered: np.ndarray) -> None:
    result, reference, covered = np.shape(result), np.shape(reference), np.shape(covered)
    if result != reference:
        raise ValueError(f"result and reference differ in shape: {result} vs {reference}")
    if result[:2] != covered:
        raise ValueError(f"covered mask {covered} does not match the images {result}")
