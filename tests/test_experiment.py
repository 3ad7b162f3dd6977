"""The experiments of docs/METHOD.md at their tiniest: well-formed outputs, and the
accuracy check's per-pixel estimate close to the finite difference."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from optimizer.experiments.accuracy import measure
from optimizer.experiments.dimension import CSV_COLUMNS, DimensionSettings, icosphere, radial_error, run_dimension


def test_icosphere_counts_and_radial_error():
    for k, vertices in ((0, 12), (2, 162), (3, 642)):
        positions, triangles = icosphere(k)
        assert len(positions) == vertices and len(triangles) == 20 * 4 ** k
        assert np.allclose(np.linalg.norm(positions, axis=1), 1.0)
    assert radial_error(icosphere(2)[0]) > 0.01  # the unit sphere is not the bumpy target


def test_dimension_writes_csv_and_plot(context, tmp_path):
    rows = run_dimension(tmp_path, settings=DimensionSettings(steps=10, resolution=32), texture_sizes=(8,),
                         subdivisions=(2,), context=context)
    assert len(rows) == 4
    with open(tmp_path / "dimension.csv") as stream:
        table = list(csv.DictReader(stream))
    assert tuple(table[0]) == CSV_COLUMNS
    assert {(r["series"], r["estimator"]) for r in table} == {
        (s, e) for s in ("texture", "geometry") for e in ("per-pixel", "global")}
    assert {int(r["params"]) for r in table} == {192, 486}
    assert all(np.isfinite(float(r["final_error"])) for r in table)
    image = Image.open(tmp_path / "dimension.png")
    assert image.format == "PNG" and image.size[0] > 400


def test_accuracy_per_pixel_beats_global_at_k200(context):
    rows = {(r["estimator"], r["K"]): r for r in measure(context, "texels", 200)}
    assert rows["per-pixel", 200]["cosine"] >= 0.95
    assert rows["per-pixel", 200]["variance"] < rows["global", 200]["variance"]
    assert rows["per-pixel", 1]["blocks"] == 200
