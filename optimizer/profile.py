"""Per-pass times of a step (``sge bench ... --profile``).

Panda3D 1.10's Python API has no GL timer queries, so each pass is timed the way
PANDA3D_NOTES.md lists third: the step loop is timed with everything on, then once with
each pass's buffer switched off; a pass costs what the step loses without it. ``frame``
is the loop with every pass off (the engine's and Python's per-frame cost). Every loop
syncs with the GPU once at its end, as SPEC.md's figures do; ``cpu_ms_per_step`` is the
process's CPU time per step in the full loop.
"""

from __future__ import annotations

import time
from typing import Callable

PASSES = ("P", "reference", "theta_plus", "theta_minus", "G")


def _timed(optimizer, step: Callable[[], None], steps: int) -> tuple[float, float]:
    optimizer.sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    optimizer.sync()
    return 1000.0 * (time.perf_counter() - wall) / steps, 1000.0 * (time.process_time() - cpu) / steps


def profile_passes(optimizer, step: Callable[[], None], steps: int) -> dict:
    """{"passes_ms": {pass: ms}, "cpu_ms_per_step", "profiled_ms_per_step"} of ``step``
    (which runs one step of ``optimizer``), each loop ``steps`` steps long."""
    buffers = {"P": optimizer.perturb_stage.buffer, "reference": optimizer.reference_pass.buffer,
               "theta_plus": optimizer.plus_pass.buffer, "theta_minus": optimizer.minus_pass.buffer,
               "G": optimizer.gradient_stage.buffer}
    _timed(optimizer, step, max(1, steps // 10))  # warm up
    full_ms, cpu_ms = _timed(optimizer, step, steps)
    passes = {}
    try:
        for name, buffer in buffers.items():
            buffer.setActive(False)
            without_ms, _ = _timed(optimizer, step, steps)
            buffer.setActive(True)
            passes[name] = max(0.0, full_ms - without_ms)
        for buffer in buffers.values():
            buffer.setActive(False)
        passes["frame"], _ = _timed(optimizer, step, steps)
    finally:
        for buffer in buffers.values():
            buffer.setActive(True)
    return {"passes_ms": passes, "cpu_ms_per_step": cpu_ms, "profiled_ms_per_step": full_ms,
            "profile_method": "step loop with one pass's buffer switched off at a time, one GPU sync per loop"}
