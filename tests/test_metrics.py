"""Image metrics (PSNR, SSIM, silhouette IoU on covered pixels) and the report image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from optimizer.metrics import (PSNR_IDENTICAL, psnr, psnr_covered, silhouette_iou, ssim_covered, summarize)
from optimizer.lod.report import MEAN_LOSS, write_report


def smooth_image(height=48, width=48, seed=0) -> np.ndarray:
    """Gradients and a soft blob in [60, 190]: room for offsets and noise without clipping."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(seed)
    channels = [60 + 60 * x + 40 * y + 30 * np.exp(-((x - a) ** 2 + (y - b) ** 2) * 20)
                for a, b in rng.uniform(0.2, 0.8, (3, 2))]
    return np.round(np.stack(channels, axis=-1)).astype(np.uint8)


def add(image: np.ndarray, offset) -> np.ndarray:
    return np.clip(np.round(image + offset), 0, 255).astype(np.uint8)


def everywhere(image: np.ndarray) -> np.ndarray:
    return np.ones(image.shape[:2], bool)


# PSNR

def test_psnr_of_identical_images_is_the_cap():
    image = smooth_image()
    assert psnr(image, image) == PSNR_IDENTICAL
    assert psnr_covered(image, image, everywhere(image)) == PSNR_IDENTICAL


def test_psnr_matches_its_definition_for_a_known_mse():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:4] = 20  # half the values off by 20: MSE = 200
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 200), abs=1e-12)
    assert psnr_covered(a, b, everywhere(a)) == pytest.approx(10 * np.log10(255 ** 2 / 200), abs=1e-12)


def test_psnr_counts_only_covered_pixels():
    rng = np.random.default_rng(1)
    reference = smooth_image()
    result = add(reference, rng.normal(0, 8, reference.shape))
    covered = np.zeros(reference.shape[:2], bool)
    covered[10:30, 5:40] = True
    before = psnr_covered(result, reference, covered)
    changed = result.copy()
    changed[~covered] = 0  # background: must not count
    assert psnr_covered(changed, reference, covered) == before
    changed[covered] = reference[covered]  # and the covered pixels do
    assert psnr_covered(changed, reference, covered) == PSNR_IDENTICAL
    assert before < 40


def test_nothing_covered_scores_as_identical():
    a, b = smooth_image(), smooth_image(seed=5)
    nothing = np.zeros(a.shape[:2], bool)
    assert psnr_covered(a, b, nothing) == PSNR_IDENTICAL
    assert ssim_covered(a, b, nothing) == 1.0


# SSIM

def test_ssim_of_identical_images_is_one():
    image = smooth_image()
    assert ssim_covered(image, image, everywhere(image)) == pytest.approx(1.0, abs=1e-12)


def test_ssim_falls_monotonically_with_noise():
    reference = smooth_image()
    noise = np.random.default_rng(2).normal(0, 1, reference.shape)
    scores = [ssim_covered(add(reference, level * noise), reference, everywhere(reference))
              for level in (1, 3, 6, 12, 24)]
    assert all(later < earlier for earlier, later in zip(scores, scores[1:])), scores
    assert scores[0] < 1.0 and scores[-1] < 0.5


def test_ssim_penalizes_an_offset_less_than_noise_of_the_same_mse():
    reference = smooth_image()
    brighter = add(reference, 12)
    noisy = add(reference, np.random.default_rng(3).normal(0, 12, reference.shape))
    mse = [np.mean((image.astype(float) - reference) ** 2) for image in (brighter, noisy)]
    assert mse[1] == pytest.approx(mse[0], rel=0.1)
    covered = everywhere(reference)
    assert ssim_covered(brighter, reference, covered) > 0.95 > 0.6 > ssim_covered(noisy, reference, covered)


def reference_ssim(x: np.ndarray, y: np.ndarray, covered: np.ndarray) -> float:
    """Wang et al.'s SSIM written out window by window: the 2-D Gaussian, weighted means
    and (co)variances about them, reflect-indexing past the covered box's edges."""
    rows, columns = np.nonzero(covered)
    top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    x = x[top:bottom, left:right].astype(np.float64)
    y = y[top:bottom, left:right].astype(np.float64)
    height, width = x.shape[:2]
    offsets = np.arange(-5, 6)
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5 ** 2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def reflect(i, n):
        while not 0 <= i < n:
            i = -i if i < 0 else 2 * (n - 1) - i
        return i

    scores = []
    for channel in range(x.shape[2]):
        for r in range(height):
            for c in range(width):
                ri = [reflect(r + o, height) for o in offsets]
                ci = [reflect(c + o, width) for o in offsets]
                wx, wy = x[np.ix_(ri, ci, [channel])][..., 0], y[np.ix_(ri, ci, [channel])][..., 0]
                mx, my = (window * wx).sum(), (window * wy).sum()
                vx, vy = (window * (wx - mx) ** 2).sum(), (window * (wy - my) ** 2).sum()
                cxy = (window * (wx - mx) * (wy - my)).sum()
                scores.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(scores))


@pytest.mark.parametrize("box", [(slice(0, 20), slice(0, 20)), (slice(3, 17), slice(2, 19)), (slice(8, 11), slice(5, 7))],
                         ids=["whole", "box", "smaller-than-window"])
def test_ssim_agrees_with_a_window_by_window_reference(box):
    rng = np.random.default_rng(4)
    reference = rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)
    result = add(reference, rng.normal(0, 30, reference.shape))
    covered = np.zeros((20, 20), bool)
    covered[box] = True
    covered[box[0].start, box[1].start] = False  # the box, not the mask, is what SSIM covers
    expected = reference_ssim(result, reference, covered)
    assert ssim_covered(result, reference, covered) == pytest.approx(expected, abs=1e-6)
    assert expected < 0.95  # a comparison that exercises every term, not two equal images


def test_ssim_ignores_pixels_outside_the_covered_box():
    reference = smooth_image()
    result = add(reference, np.random.default_rng(6).normal(0, 10, reference.shape))
    covered = np.zeros(reference.shape[:2], bool)
    covered[12:30, 8:20] = True
    before = ssim_covered(result, reference, covered)
    changed = result.copy()
    changed[:12] = 0
    changed[:, 20:] = 255
    assert ssim_covered(changed, reference, covered) == before
    changed[12:30, 8:20] = reference[12:30, 8:20]
    assert ssim_covered(changed, reference, covered) == pytest.approx(1.0, abs=1e-12) != before


# Silhouettes and summaries

def test_silhouette_iou_on_hand_made_masks():
    a = np.zeros((6, 6), bool)
    b = np.zeros((6, 6), bool)
    assert silhouette_iou(a, b) == 1.0  # both empty
    a[0:2, 0:2] = True  # 4 pixels
    assert silhouette_iou(a, b) == 0.0
    assert silhouette_iou(a, a) == 1.0
    b[1:3, 0:3] = True  # 6 pixels, 2 of them shared with a: union 8
    assert silhouette_iou(a, b) == pytest.approx(2 / 8)
    assert silhouette_iou(b, a) == pytest.approx(2 / 8)
    with pytest.raises(ValueError):
        silhouette_iou(a, b[:5])


def test_summarize_is_the_mean_over_views():
    assert summarize([20.0, 30.0, 40.0]) == pytest.approx(30.0)
    assert summarize(x for x in (1.0, 2.0)) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        summarize([])


# The report

HEIGHT, WIDTH = 31, 101  # odd: one centre pixel; 3 columns are wider than the minimum panel


def cell_images(rows: int, columns: int) -> list[list[np.ndarray]]:
    """A solid, unique red-green colour per cell (no gray or blue: the text and curve are)
    with a white centre pixel."""
    images = []
    for r in range(rows):
        row = []
        for c in range(columns):
            image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            image[:] = (200 - 40 * r, 30 + 50 * c, 0)
            image[HEIGHT // 2, WIDTH // 2] = (255, 255, 254)
            row.append(image)
        images.append(row)
    return images


def decaying_losses(steps=2000, decades=3.0) -> np.ndarray:
    return 10.0 ** (-decades * np.arange(steps) / steps)


def report(tmp_path, rows, columns, losses=None, title="", name="report.png") -> np.ndarray:
    path = tmp_path / name
    write_report(path, [f"column {c}" for c in range(columns)], cell_images(rows, columns),
                 decaying_losses() if losses is None else losses, title)
    return np.asarray(Image.open(path).convert("RGB"))


def test_report_grows_with_rows_columns_and_title(tmp_path):
    shapes = {key: report(tmp_path, *key).shape for key in [(1, 2), (2, 2), (2, 3)]}
    assert shapes[(2, 2)][0] > shapes[(1, 2)][0] and shapes[(2, 2)][1] == shapes[(1, 2)][1]
    assert shapes[(2, 3)][1] > shapes[(2, 2)][1] and shapes[(2, 3)][0] == shapes[(2, 2)][0]
    assert report(tmp_path, 2, 2, title="PSNR 24.1 -> 28.3 dB").shape[0] > shapes[(2, 2)][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.png"]  # no temporary files left


def test_report_places_the_images_in_a_grid(tmp_path):
    rows, columns = 3, 3
    image = report(tmp_path, rows, columns, title="a title")
    sources = cell_images(rows, columns)
    corners = {}
    for r in range(rows):
        for c in range(columns):
            ys, xs = np.nonzero(np.all(image == sources[r][c][0, 0], axis=-1))
            assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (HEIGHT, WIDTH)
            assert len(ys) == HEIGHT * WIDTH - 1  # all of it, bar the centre pixel
            top, left = ys.min(), xs.min()
            assert tuple(image[top + HEIGHT // 2, left + WIDTH // 2]) == (255, 255, 254)
            corners[r, c] = top, left
    for r in range(rows):
        for c in range(columns):
            assert corners[r, c][0] == corners[r, 0][0] and corners[r, c][1] == corners[0, c][1]
            if r:
                assert corners[r, c][0] >= corners[r - 1, c][0] + HEIGHT
            if c:
                assert corners[r, c][1] >= corners[r, c - 1][1] + WIDTH


def loss_curve(image: np.ndarray, below: int) -> dict[int, float]:
    """Column -> mean row of the moving-average curve's pixels under row ``below``."""
    ys, xs = np.nonzero(np.all(image[below:] == MEAN_LOSS, axis=-1))
    return {x: float(ys[xs == x].mean()) for x in np.unique(xs)}


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_report_draws_the_loss_curve_below_the_grid(tmp_path, scale):
    # Straight lines on the axis they should be drawn on: 10^(-3t) spans 1000x (log axis),
    # 2 - t spans 2x (linear axis).
    t = np.arange(2000) / 2000
    losses = 10.0 ** (-3 * t) if scale == "log" else 2.0 - t
    image = report(tmp_path, 2, 3, losses)
    grid_bottom = max(np.nonzero(np.all(image == cell[0, 0], axis=-1))[0].max()
                      for row in cell_images(2, 3) for cell in row)
    panel = image[grid_bottom + 1:]
    assert np.count_nonzero(np.any(panel != 255, axis=-1)) > 500  # axes, labels, curves
    curve = loss_curve(image, grid_bottom + 1)
    columns = sorted(curve)
    assert columns[-1] - columns[0] > 0.6 * image.shape[1]
    (x0, first), (x1, last) = (columns[0], curve[columns[0]]), (columns[-1], curve[columns[-1]])
    assert last - first > 60  # the loss falls: the curve descends by most of the panel
    for x in columns[len(columns) // 4::len(columns) // 4]:
        assert curve[x] == pytest.approx(first + (last - first) * (x - x0) / (x1 - x0), abs=4)


@pytest.mark.parametrize("losses", [np.array([]), np.array([0.5]), np.full(100, 3.0),
                                    np.array([1.0, np.nan, np.inf, 0.5, 0.0, -1.0])],
                         ids=["none", "one", "flat", "non-finite-and-non-positive"])
def test_report_survives_degenerate_losses(tmp_path, losses):
    assert report(tmp_path, 1, 2, losses).shape[0] > HEIGHT


def test_report_rejects_ragged_rows(tmp_path):
    images = cell_images(2, 2)
    images[1].pop()
    with pytest.raises(ValueError):
        write_report(tmp_path / "report.png", ["a", "b"], images, decaying_losses())
    assert not (tmp_path / "report.png").exists()


def test_the_difference_row_magnifies_each_lod_against_the_reference():
    """A caption tile, then |LOD - reference| x magnify per channel (clipped), on black."""
    from optimizer.lod.report import difference_row
    reference = np.full((16, 24, 3), 100, np.uint8)
    near = reference.copy()
    near[4, 5] = (103, 100, 90)
    far = np.zeros_like(reference)
    caption, *differences = difference_row([reference, near, reference, far], 4, "view 1")
    assert caption.shape == reference.shape and caption.dtype == np.uint8
    assert caption.min() < 128 < caption.max()  # text on white
    assert len(differences) == 3
    expected = np.zeros_like(reference)
    expected[4, 5] = (12, 0, 40)
    np.testing.assert_array_equal(differences[0], expected)
    assert not differences[1].any()
    assert (differences[2] == 255).all()  # 100 levels x 4, clipped
