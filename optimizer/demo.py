"""``sge demo``: until the LOD job lands, the cube fit with a before/after image."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import SgeError
from .gpu import GpuContext
from .images import grid, linear_to_srgb8, save_png
from .scenarios.cube import CubeScenario, geometric_error

DEMO_VIEWS = 3


def run_cube_demo(out: Path, resolution: int = 64, steps: int = 1000, seed: int = 0, log=print) -> Path:
    """Fit the cube and write ``report.png`` (reference | initial | optimised, 3 held-out
    views, shown at the supersampled render resolution) and ``metrics.json`` into ``out``
    (written to a temporary folder, renamed into place)."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    except OSError as error:
        raise SgeError(f"cannot write the output directory {out}: {error.strerror}; choose another --out") from None
    try:
        return _cube_demo(out, staging, resolution, steps, seed, log)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _cube_demo(out: Path, staging: Path, resolution: int, steps: int, seed: int, log) -> Path:
    context = GpuContext.headless()
    scenario = CubeScenario(context, resolution)
    views = scenario.views(seed + 1000)  # held-out views, not the training stream
    held_out = [next(views) for _ in range(DEMO_VIEWS)]

    positions, colors = scenario.initial_state(seed)
    scenario.mesh.positions.load(positions)
    scenario.mesh.colors.load(colors)
    before = [scenario.optimizer.snapshot(view, filter_factor=1) for view in held_out]

    log(f"fitting the cube: {steps} steps at {resolution}x{resolution} on {context.renderer}")
    run = scenario.run(seed, steps, progress=lambda s, step, err: log(
        f"  step {step}" + (f": err {err:.4f}" if err is not None else "")))
    after = [scenario.optimizer.snapshot(view, filter_factor=1) for view in held_out]

    rows = [[linear_to_srgb8(reference), linear_to_srgb8(initial), linear_to_srgb8(optimised)]
            for (initial, reference), (optimised, _) in zip(before, after)]
    metrics = {
        "scenario": "cube",
        "err_before": geometric_error(positions),
        "err_after": geometric_error(run.positions),
        "steps": steps,
        "res": resolution,
        "ms_per_step": run.ms_per_step,
        "device": context.renderer,
        "report_columns": ["reference", "initial", "optimised"],
    }
    save_png(staging / "report.png", grid(rows))
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    log(f"err {metrics['err_before']:.4f} -> {metrics['err_after']:.4f}")
    return out / "report.png"
