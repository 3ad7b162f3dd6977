"""The coverage (silhouette) term of the per-pixel loss (``Optimizer(coverage_weight=...)``,
LodSettings.coverage_weight). The scene gives the colors no say: an unlit square drawn in
exactly the background's color, so C+ = C- = the reference's color at every pixel, inside
the outline or out. The coverage term alone must then grow the square, which starts at
three quarters of the reference's size, onto the reference's outline; without it the
very same run must not move a vertex."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Mesh, Settings
from optimizer.errors import SgeError
from optimizer.gpu import read_pages
from optimizer.surface.mesh import geom_node, grid
from optimizer.view import perspective, translation

VIEW = perspective(0.5) @ translation(0.0, 0.0, -3.0)  # sees |x|, |y| <= 1.5 at z = 0
GRAY = (0.5, 0.5, 0.5, 1.0)


def silhouette_iou(optimizer, context) -> float:
    """IoU of the drawn square's and the reference's sub-sample coverage in VIEW."""
    optimizer.show(VIEW)
    pages = read_pages(context, optimizer.passes.sample)
    ours, theirs = (pages[target.sample.page][..., 0] > 0.5 for target in (optimizer.plus_pass,
                                                                             optimizer.reference_pass))
    return float(np.sum(ours & theirs) / np.sum(ours | theirs))


def run(make_optimizer, context, coverage_weight: float, steps: int = 300):
    """(IoU before, IoU after, start positions, end positions)."""
    positions, triangles = grid(3, -0.6, 0.6)
    start = positions * np.float32(0.75)
    colors = np.full((len(positions), 3), GRAY[0], np.float32)
    mesh = Mesh(start, triangles, colors, position_settings=Settings(0.02, 0.004))
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles, colors), (48, 48), seed=4,
                               supersampling=2, background=GRAY, coverage_weight=coverage_weight)
    before = silhouette_iou(optimizer, context)
    for _ in range(steps):
        optimizer.step(VIEW)
    optimizer.sync()
    optimizer.finish()
    return before, silhouette_iou(optimizer, context), start, mesh.positions.values(context)


def test_coverage_term_grows_the_silhouette_onto_the_reference(make_optimizer, context):
    before, after, _, _ = run(make_optimizer, context, coverage_weight=1.0)
    # Measured: IoU 0.543 -> 1.000 (every sub-sample of the outline agrees).
    assert before < 0.6
    assert after > 0.95


def test_without_the_coverage_term_same_colored_silhouettes_give_no_gradient(make_optimizer, context):
    before, after, start, end = run(make_optimizer, context, coverage_weight=0.0, steps=20)
    assert np.array_equal(start, end)
    assert after == before


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_bad_coverage_weights_are_refused(make_optimizer, weight):
    positions, triangles = grid(2, -1.0, 1.0)
    mesh = Mesh(positions, triangles, position_settings=Settings(0.01, 0.01))
    with pytest.raises(SgeError, match="coverage_weight"):
        make_optimizer(mesh, geom_node("reference", positions, triangles), (8, 8), coverage_weight=weight)


@pytest.mark.parametrize("weight", [-0.5, float("nan")])
def test_the_lod_job_refuses_a_bad_coverage_weight(weight):
    from optimizer.lod.scenario import LodSettings
    with pytest.raises(SgeError, match="--coverage-weight must be 0 or more"):
        LodSettings(coverage_weight=weight).validate()


@pytest.mark.parametrize("subdivision", [[], ["--subdivision", "2", "--triangles", "120"]])
def test_sge_optimize_refuses_a_bad_coverage_weight_in_one_line(tmp_path, subdivision):
    """The LOD job and the subdivision fit (which takes the weight too) alike."""
    from test_cli import run_sge
    out = tmp_path / "lod"
    result = run_sge(["optimize", "models/panda", *subdivision, "--coverage-weight", "-1", "--steps", "1",
                      "--out", str(out)], tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--coverage-weight must be 0 or more" in errors[0], result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
