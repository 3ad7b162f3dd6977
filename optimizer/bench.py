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


CUBE_SECONDS = (0.1, 0.3, 1.0, 2.0, 4.0, 10.0)


def error_at_seconds(runs, seconds=CUBE_SECONDS) -> dict:
    """The error of each run at a stepping time t: that of its last report step reached
    by t (an upper bound on the error at t with the error falling between report steps),
    the mean over runs; null where a run stopped before t or had no report step by t."""
    result = {}
    for t in seconds:
        values = []
        for run in runs:
            done = [step for step, at in run.seconds_at.items() if at <= t]
            if not done or run.seconds < t:
                values = None
                break
            values.append(run.errors[max(done)])
        result[f"{t:g}"] = statistics.fmean(values) if values else None
    return result


def bench_cube(resolution: int, steps: int, seeds: int, estimator: str, first_seed: int = 0,
               profile: bool = False, steps_per_frame: int = 1, report_steps=REPORT_STEPS,
               average_eta: float | None | str = "default", until_seconds: float | None = None) -> dict:
    """The cube fit over ``seeds`` runs: mean error at the report steps (and the last
    step), the median stepping seconds to reach each (``wall_s_at``), the error at fixed
    stepping times, median ms/step; ``steps_per_frame`` steps run in each frame.
    ``average_eta``: CubeSettings' iterate averaging unless given (None: off).
    ``until_seconds``: each run stops at its first report step after that much stepping."""
    from .scenarios.cube import CubeSettings
    started = time.perf_counter()
    context = GpuContext.headless()
    settings = CubeSettings() if average_eta == "default" else CubeSettings(average_eta=average_eta)
    scenario = CubeScenario(context, resolution, estimator, settings=settings, steps_per_frame=steps_per_frame)
    runs = []
    for seed in range(first_seed, first_seed + seeds):
        run = scenario.run(seed, steps, report_steps, until_seconds=until_seconds, progress=lambda s, step, err: log(
            f"cube seed {s}: step {step}" + (f", err {err:.5f}" if err is not None else "")))
        runs.append(run)
        log(f"cube seed {seed}: {run.ms_per_step:.3f} ms/step")
    scenario.optimizer.verify_shaders()
    reached = sorted(set.intersection(*(set(run.errors) for run in runs)))
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
        "err_iterate": {str(s): statistics.fmean(run.iterate_errors[s] for run in runs) for s in reached},
        "wall_s_at": {str(s): statistics.median(run.seconds_at[s] for run in runs) for s in reached},
        "err_at_seconds": error_at_seconds(runs),
        "average_eta": settings.average_eta,
        "ms_per_step": ms_per_step,
        "steps_per_s": 1000.0 / ms_per_step if ms_per_step > 0 else None,
        "device": context.renderer,
        "estimator": estimator,
        "res": resolution,
        "steps": steps,
        "steps_per_seed": [run.steps for run in runs],
        "until_seconds": until_seconds,
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


def bench_scale(texture_size: int, resolution: int, steps: int, profile: bool = False, color_bits: int = 16,
                reuse_reference: bool = True) -> dict:
    """A texture of texture_size^2 RGBA parameters: ms per step, split into P and pixels."""
    from .scenarios.scale import ScaleScenario
    started = time.perf_counter()
    context = GpuContext.headless()
    scenario = ScaleScenario(context, texture_size, resolution, color_bits=color_bits,
                             reuse_reference=reuse_reference)
    log(f"scale: {scenario.params} parameters, {resolution}x{resolution} images")
    timing = scenario.run(steps)
    scenario.optimizer.verify_shaders()
    extra = _profile(scenario.optimizer, lambda: scenario.optimizer.step(scenario.view), steps) if profile else {}
    return {
        "scenario": "scale",
        "params": scenario.params,
        "texture_size": texture_size,
        "color_bits": color_bits,
        "reuse_reference": reuse_reference,
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


def bench_subdivision(cage_triangles: int = 500, levels: int = 2, resolution: int = 128, steps: int = 1000,
                      texture_size: int = 512, displacement_size: int | None = None, seconds: float | None = None,
                      report_every: float | None = None, compare_lod: bool = True, source: str | None = None,
                      seed: int = 0, profile: bool = False, bake_views: int = 48, cage_fit_rounds: int | None = None,
                      cage_choice: bool = True, diagonal_rounds: int | None = None) -> dict:
    """The subdivision scenario (SCENARIOS.md): a cage of ``cage_triangles`` decimated from
    the procedural bumpy torus (or ``source``), ``levels`` of Catmull-Clark, displaced;
    held-out PSNR before (the un-optimised refined cage, maps baked) and after, beside the
    LOD job's scenario at the same final triangle count given the same steps and time."""
    from .lod.scenario import LodScenario, LodSettings
    from .scenarios.subdivision import bumpy_torus
    from .source import load_source
    from .subdivision.fit import fit
    from .subdivision.scenario import SubdivisionScenario, SubdivisionSettings
    started = time.perf_counter()
    context = GpuContext.headless()
    mesh = bumpy_torus() if source is None else load_source(source)
    settings = LodSettings(triangles=cage_triangles, texture_size=texture_size, steps=steps, resolution=resolution,
                           seed=seed, bake_views=bake_views, round_bake_views=max(1, bake_views // 2))
    subdivision = SubdivisionSettings(levels=levels, displacement_size=displacement_size)
    if cage_fit_rounds is not None:
        subdivision.cage_fit_rounds = cage_fit_rounds
    if diagonal_rounds is not None:
        subdivision.diagonal_rounds = diagonal_rounds
    if not cage_choice:
        subdivision.cage_aggressiveness = ()
    scenario = SubdivisionScenario(context, mesh, settings, subdivision)
    triangles = scenario.triangle_count
    log(f"subdivision: {len(mesh.triangles)}-triangle reference, cage of {len(scenario.cage.faces)} faces, "
        f"{levels} levels -> {triangles} triangles, {resolution}^2 renders")
    result = fit(scenario, steps, seconds, report_every, log, "subdivision")
    scenario.optimizer.verify_shaders()
    extra = {}
    if profile:
        extra = _profile(scenario.optimizer, scenario.step, min(steps, 200))
    kind = scenario.subdivision
    params = sum(s.count for s in kind.parameter_sets)
    kept = float(kind.top_weights.sum(axis=1).mean())
    scenario.optimizer.release()
    out = {
        "scenario": "subdivision",
        "source": source or "procedural bumpy torus (optimizer/scenarios/subdivision.py)",
        "source_triangles": int(len(mesh.triangles)),
        "cage_faces": int(len(scenario.cage.faces)),
        "cage_spacing": scenario.cage_spacing,
        "learning_rate_scale": scenario.learning_rate_scale,
        "levels": levels,
        "triangles": triangles,
        "texture_size": texture_size,
        "displacement_size": kind.displacement.texture_shape[0],
        "stencil_contributors": kind.cage_domain.gradient_defines["STENCIL_CONTRIBUTORS"],
        "stencil_weight_kept": kept,
        "params": params,
        **({"cage_fit": scenario.cage_fit} if hasattr(scenario, "cage_fit") else {}),
        "diagonals": scenario.diagonals,
        **({"cage_choice": scenario.cage_choice.summary()} if scenario.cage_choice else {}),
        **result,
    }
    if compare_lod:
        lod = LodScenario(context, mesh, LodSettings(triangles=triangles, texture_size=texture_size, steps=steps,
                                                     resolution=resolution, seed=seed, bake_views=bake_views,
                                                     round_bake_views=max(1, bake_views // 2)))
        log(f"lod: {len(lod.geometry.triangles)} triangles")
        lod_result = fit(lod, steps, seconds, report_every, log, "lod")
        out["lod"] = {"triangles": int(len(lod.geometry.triangles)), **lod_result}
        out["psnr_gain_over_lod"] = result["psnr_after"] - lod_result["psnr_after"]
        # What each would write (the higher of start and fit on validation views): the
        # equal-triangle comparison.
        out["psnr_written_gain_over_lod"] = result["psnr_written"] - lod_result["psnr_written"]
        lod.optimizer.release()
    out.update({"device": context.renderer, "res": resolution, "seed": seed, "bake_views": bake_views, **extra,
                "wall_s": time.perf_counter() - started})
    return out


def bench_volume(grid: int, resolution: int, steps: int | None, seconds: list[float] | None = None,
                 report_steps=(), profile: bool = False, seed: int = 0, levels: tuple | None = None,
                 save=None, steps_per_frame: int = 1, overrides: dict | None = None) -> dict:
    """SPEC's volume scenario: psnr_views, density_rmse after ``steps`` steps (or at each
    stepping time of ``seconds``), ms_per_step over the stepping; ``overrides``:
    VolumeSettings fields changed from the defaults."""
    from dataclasses import asdict

    from .volume.scenario import VolumeScenario, VolumeSettings
    started = time.perf_counter()
    context = GpuContext.headless()
    settings = VolumeSettings(**(overrides or {}))
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
        save_volume(save, *scenario.output_grid())
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
