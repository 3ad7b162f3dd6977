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


def bench_volume(grid: int, resolution: int, steps: int | None, seconds: list[float] | None = None,
                 report_steps=(), profile: bool = False, seed: int = 0, levels: tuple | None = None,
                 save=None, steps_per_frame: int = 1) -> dict:
    """SPEC's volume scenario: psnr_views, density_rmse after ``steps`` steps (or at each
    stepping time of ``seconds``), ms_per_step over the stepping."""
    from dataclasses import asdict

    from .volume.scenario import VolumeScenario, VolumeSettings
    started = time.perf_counter()
    context = GpuContext.headless()
    settings = VolumeSettings()
    if levels is not None:
        settings.levels, settings.level_starts = levels
    scenario = VolumeScenario(context, grid, resolution, settings, steps_per_frame=steps_per_frame)
    sizes = [level.size for level, _ in scenario.levels]
    log(f"volume: {' -> '.join(f'{n}^3' for n in sizes)} grid, {resolution}x{resolution} images")
    checkpoints = scenario.run(steps, seconds, report_steps, seed=seed, progress=lambda c: log(
        f"volume: step {c.steps}, {c.seconds:.1f} s stepping: psnr_views {c.psnr_views:.2f} dB, "
        f"density_rmse {c.density_rmse:.3f}"))
    scenario.optimizer.verify_shaders()
    last = checkpoints[-1]
    if save is not None:
        from .volume.export import save_volume
        save_volume(save, *scenario.grid.grid(context))
        log(f"volume: wrote {save}")
    extra = {}
    if profile:
        from .volume.scenario import training_views
        views = training_views(seed)
        extra = _profile(scenario.optimizer, lambda: scenario.optimizer.step(next(views)), min(last.steps, 100))
    return {
        "scenario": "volume",
        "psnr_views": last.psnr_views,
        "density_rmse": last.density_rmse,
        "ms_per_step": 1000.0 * last.seconds / last.steps,
        "steps_per_s": last.steps / last.seconds,
        "params": scenario.params,
        "device": context.renderer,
        "grid": grid,
        "levels": sizes,
        "res": resolution,
        "steps": last.steps,
        "steps_per_frame": steps_per_frame,
        "stepping_s": last.seconds,
        "checkpoints": [asdict(c) for c in checkpoints],
        "settings": {key: value for key, value in asdict(settings).items()},
        **extra,
        "wall_s": time.perf_counter() - started,
    }
