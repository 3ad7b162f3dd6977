"""Benchmarks with JSON output (``sge bench ...``): figures measured as SPEC.md says."""

from __future__ import annotations

import statistics
import sys
import time

from .gpu import GpuContext
from .scenarios.cube import REPORT_STEPS, CubeScenario


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _profile(optimizer, step, steps: int, steps_per_call: int = 1) -> dict:
    from .profile import profile_passes
    log("profiling: the step loop once per pass switched off")
    return profile_passes(optimizer, step, steps, steps_per_call)


def bench_cube(resolution: int, steps: int, seeds: int, estimator: str, first_seed: int = 0,
               profile: bool = False, steps_per_frame: int = 1) -> dict:
    """The cube fit over ``seeds`` runs: mean error at the report steps, median ms/step;
    ``steps_per_frame`` steps run in each frame."""
    started = time.perf_counter()
    context = GpuContext.headless()
    scenario = CubeScenario(context, resolution, estimator, steps_per_frame=steps_per_frame)
    runs = []
    for seed in range(first_seed, first_seed + seeds):
        run = scenario.run(seed, steps, progress=lambda s, step, err: log(
            f"cube seed {s}: step {step}" + (f", err {err:.5f}" if err is not None else "")))
        runs.append(run)
        log(f"cube seed {seed}: {run.ms_per_step:.3f} ms/step")
    scenario.optimizer.verify_shaders()
    reached = [s for s in REPORT_STEPS if s <= steps]
    ms_per_step = statistics.median(run.ms_per_step for run in runs)
    extra = {}
    if profile:  # after the runs: switching passes off leaves the state meaningless
        views = scenario.views(first_seed)
        extra = _profile(scenario.optimizer,
                         lambda: scenario.optimizer.steps([next(views) for _ in range(steps_per_frame)]),
                         min(steps, 500), steps_per_frame)
    return {
        "scenario": "cube",
        "err": {str(s): statistics.fmean(run.errors[s] for run in runs) for s in reached},
        "err_per_seed": {str(s): [run.errors[s] for run in runs] for s in reached},
        "ms_per_step": ms_per_step,
        "steps_per_s": 1000.0 / ms_per_step if ms_per_step > 0 else None,
        "device": context.renderer,
        "estimator": estimator,
        "res": resolution,
        "steps": steps,
        "seeds": seeds,
        "steps_per_frame": steps_per_frame,
        **extra,
        "wall_s": time.perf_counter() - started,
    }


def bench_texture(resolution: int, steps: int, seed: int = 0, contributors: str = "bilinear",
                  mipmaps: bool = False, profile: bool = False) -> dict:
    """The smiley texture fit: psnr_texture, psnr_views after ``steps`` steps."""
    from .scenarios.texture import TextureScenario, TextureSettings
    started = time.perf_counter()
    context = GpuContext.headless()
    scenario = TextureScenario(context, resolution, TextureSettings(contributors=contributors, mipmaps=mipmaps))
    result = scenario.run(seed, steps, progress=lambda step: log(f"texture: step {step}"))
    scenario.optimizer.verify_shaders()
    extra = {}
    if profile:
        views = scenario.views(seed)
        extra = _profile(scenario.optimizer, lambda: scenario.optimizer.step(*next(views)), min(steps, 500))
    return {
        "scenario": "texture",
        "contributors": contributors,
        "mipmaps": scenario.albedo.mipmaps,
        "psnr_texture": result["psnr_texture"],
        "psnr_views": result["psnr_views"],
        "seen_texels": result["seen_texels"],
        "ms_per_step": result["ms_per_step"],
        "steps_per_s": 1000.0 / result["ms_per_step"],
        "params": scenario.params,
        "device": context.renderer,
        "res": resolution,
        "steps": steps,
        "seed": seed,
        **extra,
        "wall_s": time.perf_counter() - started,
    }


def bench_scale(texture_size: int, resolution: int, steps: int, profile: bool = False) -> dict:
    """A texture of texture_size^2 RGBA parameters: ms per step, split into P and pixels."""
    from .scenarios.scale import ScaleScenario
    started = time.perf_counter()
    context = GpuContext.headless()
    scenario = ScaleScenario(context, texture_size, resolution)
    log(f"scale: {scenario.params} parameters, {resolution}x{resolution} images")
    timing = scenario.run(steps)
    scenario.optimizer.verify_shaders()
    extra = _profile(scenario.optimizer, lambda: scenario.optimizer.step(scenario.view), steps) if profile else {}
    return {
        "scenario": "scale",
        "params": scenario.params,
        "texture_size": texture_size,
        **timing,
        "steps_per_s": 1000.0 / timing["ms_per_step"],
        "p_ns_per_param": 1e6 * timing["p_ms_per_step"] / scenario.params,
        "pixel_ns_per_pixel": 1e6 * timing["pixel_ms_per_step"] / resolution ** 2,
        "peak_gpu_mib": scenario.gpu_mib(),
        "peak_gpu_mib_source": "sum of the optimizer's own buffers and render targets (no driver query in Panda3D 1.10)",
        "device": context.renderer,
        "res": resolution,
        "steps": steps,
        **extra,
        "wall_s": time.perf_counter() - started,
    }


def bench_lod(resolution: int, steps: int, profile: bool = False, source: str = "models/panda") -> dict:
    """The demo's LOD (models/panda -> 1,000 triangles, 512^2 albedo and normal map) at
    ``resolution``: ms per step (and the per-pass profile)."""
    from .lod.scenario import LodScenario, LodSettings
    from .source import load_source
    started = time.perf_counter()
    context = GpuContext.headless()
    mesh = load_source(source)
    scenario = LodScenario(context, mesh, LodSettings(steps=steps, resolution=resolution))
    log(f"lod: {len(scenario.geometry.triangles)} triangles, {resolution}x{resolution} images "
        f"({scenario.settings.supersampling}x{scenario.settings.supersampling} supersampled)")
    scenario.step()
    scenario.optimizer.sync()  # first frame: shader compilation, uploads
    seconds = scenario.run(steps)
    scenario.optimizer.verify_shaders()
    ms_per_step = 1000.0 * seconds / steps
    extra = _profile(scenario.optimizer, scenario.step, steps) if profile else {}
    return {
        "scenario": "lod",
        "source": source,
        "triangles": len(scenario.geometry.triangles),
        "texture_size": scenario.settings.texture_size,
        "params": sum(s.count for s in scenario.mesh.parameter_sets),
        "ms_per_step": ms_per_step,
        "steps_per_s": 1000.0 / ms_per_step,
        "device": context.renderer,
        "res": resolution,
        "steps": steps,
        **extra,
        "wall_s": time.perf_counter() - started,
    }


def bench_splats(splats: int, resolution: int, steps: int, profile: bool = False, export_views=None,
                 report_seconds=(), seed: int = 0, ply=None) -> dict:
    """SPEC's splats scenario: psnr_views / ssim_views of the held-out cameras at step 0
    and at the end (and at ``report_seconds`` of stepping), ms per step; ``export_views``
    writes the NeRF-synthetic dataset first, ``ply`` the fitted splats."""
    from .splats.scenario import SplatsScenario
    started = time.perf_counter()
    context = GpuContext.headless()
    scenario = SplatsScenario(context, splats, resolution, seed=seed)
    log(f"splats: {splats} splats ({scenario.params} parameters), {resolution}x{resolution} images")
    if export_views is not None:
        scenario.export_views(export_views)
        log(f"splats: wrote the dataset to {export_views}")

    def progress(step, seconds, figures):
        text = (f", {figures['relocated']} faint splats relocated" if figures and "relocated" in figures else
                f", psnr_views {figures['psnr_views']:.2f} dB" if figures else "")
        log(f"splats: step {step}, {seconds:.1f} s of stepping{text}")

    run = scenario.run(steps, report_seconds, progress=progress)
    scenario.optimizer.verify_shaders()
    if ply is not None:
        from .splats.ply import write_ply
        write_ply(ply, scenario.splats.values(context))
        log(f"splats: wrote {ply}")
    extra = {}
    if profile:
        views = scenario.views(seed)
        extra = _profile(scenario.optimizer, lambda: scenario.optimizer.step(next(views)), min(steps, 200))
    if report_seconds:
        extra["at_seconds"] = run.at_seconds
    return {
        "scenario": "splats",
        "psnr_views": run.end["psnr_views"],
        "ssim_views": run.end["ssim_views"],
        "psnr_views_step0": run.start["psnr_views"],
        "ssim_views_step0": run.start["ssim_views"],
        "ms_per_step": run.ms_per_step,
        "steps_per_s": 1000.0 / run.ms_per_step if run.ms_per_step > 0 else None,
        "splats": splats,
        "params": scenario.params,
        "device": context.renderer,
        "res": resolution,
        "steps": run.steps,
        **extra,
        "wall_s": time.perf_counter() - started,
    }
