"""Per-pass times of a step (``sge bench ... --profile``).

Panda3D 1.10's Python API has no GL timer queries, so each pass is timed the way
PANDA3D_NOTES.md lists third: the step loop is timed with everything on, then once with
each pass switched off (its nodes hidden in every step of the frame); a pass costs what
the step loses without it. ``frame`` is the loop with every pass off: Python, the
engine's per-frame and per-display-region work, and the clear of the render targets,
which the three renders share (one region per step, optimizer/gpu.py: PassBuffer). Every
loop syncs with the GPU once at its end, as SPEC.md's figures do; ``cpu_ms_per_step`` is
the process's CPU time per step in the full loop.
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


def profile_passes(optimizer, step: Callable[[], None], steps: int, steps_per_call: int = 1) -> dict:
    """{"passes_ms": {pass: ms}, "cpu_ms_per_step", "profiled_ms_per_step"} of ``step``
    (which runs ``steps_per_call`` steps of ``optimizer``), each loop about ``steps``
    steps long; times are per step."""
    calls = max(1, steps // steps_per_call)

    def per_step(timing):
        return tuple(value / steps_per_call for value in timing)

    _timed(optimizer, step, max(1, calls // 10))  # warm up
    full_ms, cpu_ms = per_step(_timed(optimizer, step, calls))
    passes = {}
    try:
        for name in PASSES:
            optimizer.set_pass_active(name, False)
            without_ms, _ = per_step(_timed(optimizer, step, calls))
            optimizer.set_pass_active(name, True)
            passes[name] = max(0.0, full_ms - without_ms)
        for name in PASSES:
            optimizer.set_pass_active(name, False)
        passes["frame"], _ = per_step(_timed(optimizer, step, calls))
    finally:
        for name in PASSES:
            optimizer.set_pass_active(name, True)
    return {"passes_ms": passes, "cpu_ms_per_step": cpu_ms, "profiled_ms_per_step": full_ms,
            "profile_method": "step loop with one pass switched off at a time (in every step of a frame; "
                              "'frame' keeps the render targets' clear), one GPU sync per loop"}
