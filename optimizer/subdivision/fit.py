"""Fitting a scenario (the subdivision kind's or the plain LOD's) and measuring it on
held-out views, for the comparisons the subdivision job and ``sge bench subdivision``
report: held-out PSNR before and after, and against the wall time of the steps."""

from __future__ import annotations

import time
from typing import Callable

CHUNK = 25  # steps between looks at the clock (one GPU sync each)


def fit(scenario, steps: int, seconds: float | None = None, report_every: float | None = None,
        log: Callable[[str], None] = lambda text: None, label: str = "", report_views=None,
        held_out_count: int | None = None) -> dict:
    """Bake, score, step (bakes at the settings' round ends, as the LOD job does), score.

    ``seconds``: stop stepping once the steps (bakes included) took this long.
    ``report_every``: held-out PSNR every this many seconds of stepping (the scoring
    itself not counted). ``report_views``: also render these (view, light) pairs before
    and after (``renders``: {"before": [(ours, reference)], "after": [...]}, 8-bit sRGB). Returns psnr/ssim/iou before and after, the steps taken,
    ms_per_step and ``curve`` [(seconds, step, psnr)]."""
    held_out = scenario.held_out_views() if held_out_count is None else scenario.held_out_views(held_out_count)
    s = scenario.settings
    scenario.bake()
    before = scenario.evaluate(held_out)
    renders = {}

    def render(stage):
        if report_views:
            with scenario._looking():
                renders[stage] = [scenario.render(view, light, 1)[:2] for view, light in report_views]

    render("before")
    log(f"{label}: before {before['psnr']:.2f} dB")
    initial = None
    before_baked = before
    if hasattr(scenario, "initialise"):  # the subdivision kind: interpolating cage, displacement baked
        scenario.initialise()
        initial = scenario.evaluate(held_out)
        log(f"{label}: initialised {initial['psnr']:.2f} dB")
    # What the job would write: the fitted surface, or the start when that scores higher on
    # validation views of their own (the LOD job's rule), so held-out figures stay unbiased.
    validation = scenario.validation_views()
    start_validation = scenario.evaluate(validation)["psnr"]
    start_state = scenario.baked_state()
    scenario.step()  # first frame: shader compilation and uploads, not timed
    scenario.optimizer.sync()
    bake_steps = sorted(set(s.bake_steps()))
    curve = [(0.0, 0, (initial or before)["psnr"])]
    stepping, step_seconds, step = 0.0, 0.0, 1
    next_report = report_every
    while step < steps and (seconds is None or stepping < seconds):
        started = time.perf_counter()
        chunk = min(CHUNK, steps - step)
        for _ in range(chunk):
            scenario.step()
        scenario.optimizer.sync()
        step_seconds += time.perf_counter() - started
        crossed = [b for b in bake_steps if step < b <= step + chunk]
        step += chunk
        if crossed and step < steps:
            scenario.bake(s.round_bake_views)
        stepping += time.perf_counter() - started
        if next_report is not None and stepping >= next_report:
            psnr = scenario.evaluate(held_out)["psnr"]
            curve.append((stepping, step, psnr))
            log(f"{label}: {stepping:.1f} s, step {step}: {psnr:.2f} dB")
            while next_report <= stepping:
                next_report += report_every
    scenario.optimizer.finish()
    started = time.perf_counter()
    scenario.bake()
    bake_seconds = time.perf_counter() - started
    after = scenario.evaluate(held_out)
    after_validation = scenario.evaluate(validation)["psnr"]
    optimised = after_validation > start_validation
    if not optimised:
        scenario.load_baked_state(start_state)
    written = after if optimised else (initial or before_baked)
    render("after")
    curve.append((stepping + bake_seconds, step, after["psnr"]))
    log(f"{label}: after {step} steps {after['psnr']:.2f} dB")
    return {"psnr_before": before["psnr"], "ssim_before": before["ssim"], "iou_before": before["iou"],
            "psnr_after": after["psnr"], "ssim_after": after["ssim"], "iou_after": after["iou"],
            **({f"{key}_initial": value for key, value in initial.items()} if initial else {}),
            "written": "optimised" if optimised else "start",
            "psnr_written": written["psnr"], "ssim_written": written["ssim"], "iou_written": written["iou"],
            "psnr_validation_start": start_validation, "psnr_validation_after": after_validation,
            "steps": step, "ms_per_step": 1000.0 * step_seconds / max(1, step - 1),
            "stepping_seconds": stepping, "final_bake_seconds": bake_seconds,
            "curve": [[round(t, 3), k, round(p, 4)] for t, k, p in curve],
            **({"renders": renders} if report_views else {})}
