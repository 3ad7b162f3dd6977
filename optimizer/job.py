"""The main job, ``sge optimize``: a detailed asset in, an optimised low-poly LOD with its
own textures out, written as .bam/.egg/.obj with a report and metrics.

Everything is written into a temporary directory beside ``out`` and renamed into place at
the end, so ``out`` is either the previous result or the complete new one, never half.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import SgeError
from .export import write_lod
from .gpu import GpuContext
from .report import write_report
from .scenarios.lod import LodScenario, LodSettings
from .sge import HISTORY_LENGTH
from .source import load_source

REPORT_VIEWS = 3
REPORT_COLUMNS = ["reference", "initial LOD", "optimized LOD"]


class Progress:
    """What the job tells its caller as it goes: ``message(text)`` for phases and
    ``step(step, steps, loss)`` now and then while optimising (``loss`` may be None)."""

    def message(self, text: str) -> None:
        pass

    def step(self, step: int, steps: int, loss: float | None) -> None:
        pass


def run_lod_job(source: str | Path, out: Path, settings: LodSettings, progress: Progress | None = None,
                context: GpuContext | None = None, should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Run the LOD job on ``source`` and write its outputs into ``out``; returns the metrics."""
    progress = progress or Progress()
    out = Path(out)
    started = time.perf_counter()
    mesh = load_source(source)  # bad input fails here, before anything is written
    settings.validate(len(mesh.triangles))
    staging = _make_staging(out)
    try:
        metrics = _run(mesh, staging, settings, progress, context or GpuContext.headless(), should_stop, started)
        _replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress.message(f"wrote {out}")
    return metrics


def _run(mesh, staging: Path, settings: LodSettings, progress: Progress, context: GpuContext,
         should_stop, started: float) -> dict:
    progress.message(f"{mesh.name}: {len(mesh.triangles)} triangles, {len(mesh.materials)} materials; "
                     f"building a {settings.triangles}-triangle LOD with {settings.texture_size}^2 textures")
    scenario = LodScenario(context, mesh, settings)
    try:
        scenario.project_reference_colors()
        held_out = scenario.held_out_views()
        before = scenario.evaluate(held_out)
        report_before = [scenario.render(view, light, 1)[:2] for view, light in held_out[:REPORT_VIEWS]]
        progress.message(f"initial LOD: PSNR {before['psnr']:.2f} dB, silhouette IoU {before['iou']:.4f}; "
                         f"optimising {settings.steps} steps at {settings.resolution}^2 on {context.renderer}")

        curve = []
        optimizer = scenario.optimizer
        report_every = max(1, min(HISTORY_LENGTH // 2, settings.steps // 20 or 1))

        def catch_up(step: int) -> None:
            """Append the losses of the steps since the last call (the GPU keeps the last
            HISTORY_LENGTH; this runs more often than that)."""
            missing = step - len(curve)
            if missing > 0:
                curve.extend(optimizer.losses()[-missing:])

        def on_step(step: int) -> None:
            if step % report_every == 0 or step == settings.steps:
                catch_up(step)
                progress.step(step, settings.steps, float(curve[-1]))

        seconds = scenario.run(settings.steps, on_step, should_stop)
        steps_taken = optimizer.step_index
        catch_up(steps_taken)
        after = scenario.evaluate(held_out)
        report_after = [scenario.render(view, light, 1)[0] for view, light in held_out[:REPORT_VIEWS]]

        arrays = scenario.lod_arrays()
        write_lod(staging, arrays["positions"], arrays["triangles"], arrays["normals"], arrays["tangents"],
                  arrays["binormals"], arrays["uvs"], arrays["albedo"], arrays["normal_map"], name=mesh.name)
        metrics = {
            "source": str(mesh.path),
            "source_sha256": mesh.file_hash(),
            "psnr_before": before["psnr"], "psnr_after": after["psnr"],
            "ssim_before": before["ssim"], "ssim_after": after["ssim"],
            "iou_before": before["iou"], "iou_after": after["iou"],
            "held_out_views": len(held_out),
            "triangles": int(len(arrays["triangles"])),
            "source_triangles": int(len(mesh.triangles)),
            "texture_size": settings.texture_size,
            "steps": int(steps_taken),
            "steps_requested": settings.steps,
            "res": settings.resolution,
            "seed": settings.seed,
            "seconds": time.perf_counter() - started,
            "optimize_seconds": seconds,
            "ms_per_step": 1000.0 * seconds / max(1, steps_taken),
            "device": context.renderer,
        }
        rows = [[reference, initial, optimised] for (initial, reference), optimised in zip(report_before, report_after)]
        title = (f"{mesh.name}: {metrics['triangles']} triangles, {settings.texture_size}^2 textures, "
                 f"{steps_taken} steps   PSNR {before['psnr']:.2f} -> {after['psnr']:.2f} dB   "
                 f"SSIM {before['ssim']:.3f} -> {after['ssim']:.3f}   IoU {before['iou']:.3f} -> {after['iou']:.3f}")
        write_report(staging / "report.png", REPORT_COLUMNS, rows, np.asarray(curve, np.float64), title)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        progress.message(f"PSNR {before['psnr']:.2f} -> {after['psnr']:.2f} dB, SSIM {before['ssim']:.4f} -> "
                         f"{after['ssim']:.4f}, silhouette IoU {before['iou']:.4f} -> {after['iou']:.4f}")
        return metrics
    finally:
        scenario.optimizer.release()


def _make_staging(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    except OSError as error:
        raise SgeError(f"cannot write the output directory {out}: {error.strerror}; choose another --out") from None


def _replace(staging: Path, out: Path) -> None:
    """Rename the finished staging directory to ``out`` (replacing an older result)."""
    old = None
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise SgeError(f"{out} exists and is not a directory; choose another --out")
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "previous")
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
