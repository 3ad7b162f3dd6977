"""The main job, ``sge optimize``: a detailed asset in, an optimised low-poly LOD with its
own textures out, written as .bam/.egg/.obj with a report and metrics.

``LodSession`` is the job's one code path: it makes the initial LOD, scores it, steps the
optimisation and saves the outputs. ``sge optimize`` drives it in a headless loop; the
in-game ``game.OptimizerComponent`` drives the same session from a running app's frames.
Outputs are written into a temporary directory beside ``out`` and renamed into place at
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
from .source import SourceMesh, load_source

REPORT_VIEWS = 3
REPORT_COLUMNS = ["reference", "initial LOD", "optimized LOD"]


class Progress:
    """What the job tells its caller as it goes: ``message(text)`` for phases and
    ``step(step, steps, loss)`` now and then while optimising (``loss`` may be None)."""

    def message(self, text: str) -> None:
        pass

    def step(self, step: int, steps: int, loss: float | None) -> None:
        pass


class LodSession:
    """An LOD of ``mesh`` being optimised: the initial LOD (decimated, unwrapped, colors
    projected) is made and scored on held-out views at construction."""

    def __init__(self, mesh: SourceMesh, settings: LodSettings, context: GpuContext,
                 progress: Progress | None = None, lod: SourceMesh | None = None):
        self.started = time.perf_counter()
        self.mesh = mesh
        self.settings = settings
        self.context = context
        self.progress = progress or Progress()
        lod_text = f"the given {len(lod.triangles)}-triangle LOD" if lod is not None else \
            f"a {settings.triangles}-triangle LOD"
        self.progress.message(f"{mesh.name}: {len(mesh.triangles)} triangles, {len(mesh.materials)} materials; "
                              f"building {lod_text} with {settings.texture_size}^2 textures")
        self.scenario = LodScenario(context, mesh, settings, lod)
        self.optimizer = self.scenario.optimizer
        self.scenario.project_reference_colors()
        self.held_out = self.scenario.held_out_views()
        self.before = self.scenario.evaluate(self.held_out)
        self.report_before = [self.scenario.render(view, light, 1)[:2] for view, light in self.held_out[:REPORT_VIEWS]]
        self.curve: list[float] = []
        self.step_seconds = 0.0
        self.progress.message(f"initial LOD: PSNR {self.before['psnr']:.2f} dB, silhouette IoU "
                              f"{self.before['iou']:.4f}; optimising at {settings.resolution}^2 on {context.renderer}")

    @property
    def step_index(self) -> int:
        return self.optimizer.step_index

    def step(self) -> None:
        """One step, rendered now."""
        self.scenario.step()

    def begin_step(self) -> None:
        """Set up one step for the next frame the engine renders (an app's own frame)."""
        self.scenario.begin_step()

    def losses(self, rendered: int | None = None) -> np.ndarray:
        """The mean pixel loss of every step so far, oldest first (reads the GPU's loss
        history; call it now and then, at least every HISTORY_LENGTH steps). ``rendered``:
        how many steps have been rendered, when the last ones are only set up."""
        rendered = self.optimizer.step_index if rendered is None else rendered
        missing = rendered - len(self.curve)
        if missing > 0:
            self.optimizer.sync()
            history = self.optimizer.losses()
            history = history[:len(history) - (self.optimizer.step_index - rendered)]
            self.curve.extend(history[-min(missing, HISTORY_LENGTH):])
        return np.asarray(self.curve, np.float64)

    def run(self, steps: int, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Take ``steps`` more steps (fewer on ``should_stop()`` or Ctrl-C: the last
        finished step stands)."""
        report_every = max(1, min(HISTORY_LENGTH // 2, steps // 20 or 1))
        started = time.perf_counter()
        first = self.step_index
        try:
            for _ in range(steps):
                if should_stop():
                    break
                self.step()
                done = self.step_index - first
                if done % report_every == 0 or done == steps:
                    self.progress.step(done, steps, float(self.losses()[-1]))
        except KeyboardInterrupt:
            pass
        self.optimizer.sync()
        self.step_seconds += time.perf_counter() - started

    def save(self, out: Path) -> dict:
        """Write every output of the LOD as it stands into ``out`` (atomically); returns the
        metrics."""
        out = Path(out)
        staging = _make_staging(out)
        try:
            metrics = self._write(staging)
            _replace(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.progress.message(f"wrote {out}")
        return metrics

    def _write(self, staging: Path) -> dict:
        settings, scenario, before = self.settings, self.scenario, self.before
        curve = self.losses()
        self.optimizer.finish()
        after = scenario.evaluate(self.held_out)
        report_after = [scenario.render(view, light, 1)[0] for view, light in self.held_out[:REPORT_VIEWS]]
        arrays = scenario.lod_arrays()
        write_lod(staging, arrays["positions"], arrays["triangles"], arrays["normals"], arrays["tangents"],
                  arrays["binormals"], arrays["uvs"], arrays["albedo"], arrays["normal_map"], name=self.mesh.name)
        steps = self.step_index
        metrics = {
            "source": str(self.mesh.path),
            "source_sha256": self.mesh.file_hash(),
            "psnr_before": before["psnr"], "psnr_after": after["psnr"],
            "ssim_before": before["ssim"], "ssim_after": after["ssim"],
            "iou_before": before["iou"], "iou_after": after["iou"],
            "held_out_views": len(self.held_out),
            "triangles": int(len(arrays["triangles"])),
            "source_triangles": int(len(self.mesh.triangles)),
            "texture_size": settings.texture_size,
            "steps": int(steps),
            "steps_requested": settings.steps,
            "res": settings.resolution,
            "seed": settings.seed,
            "seconds": time.perf_counter() - self.started,
            "optimize_seconds": self.step_seconds,
            "ms_per_step": 1000.0 * self.step_seconds / max(1, steps),
            "device": self.context.renderer,
        }
        rows = [[reference, initial, optimised]
                for (initial, reference), optimised in zip(self.report_before, report_after)]
        title = (f"{self.mesh.name}: {metrics['triangles']} triangles, {settings.texture_size}^2 textures, "
                 f"{steps} steps   PSNR {before['psnr']:.2f} -> {after['psnr']:.2f} dB   "
                 f"SSIM {before['ssim']:.3f} -> {after['ssim']:.3f}   IoU {before['iou']:.3f} -> {after['iou']:.3f}")
        write_report(staging / "report.png", REPORT_COLUMNS, rows, curve, title)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        self.progress.message(f"PSNR {before['psnr']:.2f} -> {after['psnr']:.2f} dB, SSIM {before['ssim']:.4f} -> "
                              f"{after['ssim']:.4f}, silhouette IoU {before['iou']:.4f} -> {after['iou']:.4f}")
        return metrics

    def release(self) -> None:
        self.optimizer.release()


def run_lod_job(source: str | Path, out: Path, settings: LodSettings, progress: Progress | None = None,
                context: GpuContext | None = None, should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Run the LOD job on ``source`` and write its outputs into ``out``; returns the metrics."""
    out = Path(out)
    mesh = load_source(source)  # bad input fails here, before anything is written
    settings.validate(len(mesh.triangles))
    _check_writable(out)
    session = LodSession(mesh, settings, context or GpuContext.headless(), progress)
    try:
        session.run(settings.steps, should_stop)
        return session.save(out)
    finally:
        session.release()


def _check_writable(out: Path) -> None:
    """Fail before the (long) run when ``out`` cannot be written."""
    shutil.rmtree(_make_staging(out), ignore_errors=True)


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
