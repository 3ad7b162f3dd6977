"""``sge optimize SOURCE --subdivision L``: the LOD job with the subdivision kind.

The cage is the source decimated to ``--triangles`` (one budget) and unwrapped, or the
cage the user gives (``--cage CAGE.obj``, its quads kept). It is refined L levels,
displaced and fitted (scenario.py, fit.py), and written, beside a report and metrics, as:

- ``NAME.cage.obj``: the fitted cage, its polygons as they are, with ``NAME.mtl``;
- ``NAME_displacement.png``: the displacement map, 16-bit grey, row 0 at v = 1: height =
  (value - 32768) * ``displacement_units_per_step`` (metrics.json), in the source's
  units, along the refined surface's smooth normal;
- ``NAME_albedo.png``, ``NAME_normal.png`` and the refined, displaced mesh as
  ``NAME.bam``/``.egg``/``.obj``/``.glb`` (optimizer.lod.export.write_lod).

metrics.json holds the fit's held-out figures, the un-optimised refined cage's (maps
baked), and the LOD job's scenario at the same final triangle count given the same steps.
Outputs are written into a staging folder renamed into place at the end.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import SgeError
from ..gpu import GpuContext
from ..images import atomic_write
from ..lod.export import write_lod
from ..lod.job import Progress, _check_writable, _make_staging, _replace, check_replaceable, OUTPUT_MARKER, MARKER_TEXT
from ..lod.report import difference_row, write_report
from ..lod.scenario import LodScenario, LodSettings
from ..source import load_source
from .cage_obj import read_cage, write_cage
from .fit import fit
from .scenario import Cage, SubdivisionScenario, SubdivisionSettings

REPORT_VIEWS = 3
REPORT_COLUMNS = ["reference", "refined cage (not optimised)", "LOD job, same triangles", "subdivision fit"]
DISPLACEMENT_ZERO = 32768


def run_subdivision_job(source, out: Path, settings: LodSettings, levels: int, cage_path=None,
                        progress: Progress | None = None, force: bool = False, compare_lod: bool = True) -> dict:
    """Fit a displaced subdivision surface to ``source`` and write it into ``out``;
    returns the metrics."""
    started = time.perf_counter()
    progress = progress or Progress()
    out = Path(out)
    mesh = load_source(source)
    cage = None
    if cage_path is not None:
        positions, faces, face_uvs = read_cage(cage_path)
        cage = Cage(positions.astype(np.float32), faces, face_uvs)
    subdivision = SubdivisionSettings(levels=levels)
    subdivision.validate()
    settings.validate()
    check_replaceable(out, force)
    _check_writable(out)
    context = GpuContext.headless()
    scenario = SubdivisionScenario(context, mesh, settings, subdivision, cage)
    triangles = scenario.triangle_count
    progress.message(f"{mesh.name}: {len(mesh.triangles)} triangles; cage of {len(scenario.cage.faces)} faces "
                     f"({int((scenario.cage.faces[:, 3] >= 0).sum())} quads), {levels} levels -> {triangles} "
                     f"triangles, {settings.texture_size}^2 maps")
    report_views = scenario.report_views(REPORT_VIEWS)
    result = fit(scenario, settings.steps, log=progress.message, label="subdivision", report_views=report_views)
    renders = result.pop("renders")
    losses = scenario.optimizer.losses()
    staging = _make_staging(out)
    try:
        arrays = scenario.lod_arrays()
        write_lod(staging, **arrays, name=mesh.name)
        cage_positions, displacement = scenario.cage_arrays()
        write_cage(staging / f"{mesh.name}.cage.obj", cage_positions, scenario.cage.faces, scenario.cage.face_uvs,
                   f"{mesh.name}.mtl", mesh.name)
        units = write_displacement(staging / f"{mesh.name}_displacement.png", displacement)
        scenario.optimizer.release()
        metrics = {"source": str(mesh.path), "source_triangles": int(len(mesh.triangles)),
                   "cage_faces": int(len(scenario.cage.faces)),
                   "cage_spacing": scenario.cage_spacing, "learning_rate_scale": scenario.learning_rate_scale,
                   "cage_quads": int((scenario.cage.faces[:, 3] >= 0).sum()),
                   "cage_given": cage_path is not None, "levels": levels, "triangles": triangles,
                   "texture_size": settings.texture_size, "res": settings.resolution, "seed": settings.seed,
                   "displacement_units_per_step": units, "displacement_zero": DISPLACEMENT_ZERO,
                   "refined_cage": {key.removesuffix("_before"): value for key, value in result.items()
                                    if key.endswith("_before")},
                   **{key: value for key, value in result.items() if not key.endswith("_before")},
                   **({"cage_fit": scenario.cage_fit} if hasattr(scenario, "cage_fit") else {}),
                   "diagonals": scenario.diagonals,
                   **({"cage_choice": scenario.cage_choice.summary()} if scenario.cage_choice else {}),
                   "device": context.renderer}
        lod_after = None
        if compare_lod:
            progress.message(f"the LOD job at the same {triangles} triangles, for comparison")
            lod = LodScenario(context, mesh, LodSettings(triangles=triangles, texture_size=settings.texture_size,
                                                         steps=settings.steps, resolution=settings.resolution,
                                                         seed=settings.seed))
            lod_result = fit(lod, settings.steps, log=progress.message, label="lod", report_views=report_views)
            lod_after = [ours for ours, _ in lod_result.pop("renders")["after"]]
            lod.optimizer.release()
            metrics["lod_job"] = {"triangles": int(len(lod.geometry.triangles)), **lod_result}
            metrics["psnr_gain_over_lod_job"] = result["psnr_after"] - lod_result["psnr_after"]
            metrics["psnr_written_gain_over_lod_job"] = result["psnr_written"] - lod_result["psnr_written"]
        rows = []
        for k, ((before, reference), (after, _)) in enumerate(zip(renders["before"], renders["after"])):
            rows.append([reference, before, lod_after[k] if lod_after else np.zeros_like(after), after])
        rows.append(difference_row(rows[0], 4, "first view"))
        title = (f"{mesh.name}: cage {len(scenario.cage.faces)} faces x {levels} levels = {triangles} triangles   "
                 f"held-out PSNR: refined cage {result['psnr_before']:.2f}"
                 + (f", LOD job {metrics['lod_job']['psnr_after']:.2f}" if compare_lod else "")
                 + f", subdivision fit {result['psnr_after']:.2f} dB")
        write_report(staging / "report.png", REPORT_COLUMNS, rows, losses, title)
        metrics["seconds"] = time.perf_counter() - started
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / OUTPUT_MARKER).write_text(MARKER_TEXT)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress.message(f"held-out PSNR: refined cage {result['psnr_before']:.2f} dB -> subdivision fit "
                     f"{result['psnr_after']:.2f} dB" + (f" (LOD job at {triangles} triangles: "
                                                         f"{metrics['lod_job']['psnr_after']:.2f} dB)" if compare_lod else ""))
    return metrics


def write_displacement(path: Path, displacement: np.ndarray) -> float:
    """The (H, W) heights as a 16-bit grey PNG (row 0 of the array at the image's
    bottom: v = 0); returns the units one step of the 16-bit value stands for (height =
    (value - 32768) * units)."""
    displacement = np.asarray(displacement, np.float64)
    if not np.all(np.isfinite(displacement)):
        raise SgeError("the displacement map holds NaN or Inf; the fit diverged: try fewer --steps")
    peak = float(np.abs(displacement).max())
    units = max(peak, 1e-12) / 32767.0
    values = np.clip(np.round(displacement / units) + DISPLACEMENT_ZERO, 0, 65535).astype(np.uint16)
    height, width = values.shape
    image = Image.frombytes("I;16", (width, height), np.ascontiguousarray(values[::-1]).astype("<u2").tobytes())
    atomic_write(path, lambda stream: image.save(stream, format="PNG"))
    return units


def read_displacement(path: Path, units: float) -> np.ndarray:
    """The heights ``write_displacement`` wrote (row 0 at v = 0)."""
    values = np.asarray(Image.open(path), np.float64)[::-1]
    return (values - DISPLACEMENT_ZERO) * units
