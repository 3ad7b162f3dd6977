"""The ``sge`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import SgeError
from .lod.scenario import LodSettings
from .sge import ESTIMATORS, MAX_STEPS_PER_FRAME
from .surface.texture import MAX_TEXTURE_SIZE


# The renders are supersampled 3x3 (CubeSettings): 2048 px -> 6144^2 float targets.
MAX_RESOLUTION = 2048


class SgeGroup(click.Group):
    """Turns SgeError into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SgeError as error:
            raise click.ClickException(str(error)) from None


# Commands other packages add to ``sge`` (the entry point group; game/ adds ``view``): the
# optimizer never imports them, and loads one only when it is asked for.
PLUGIN_GROUP = "sge.commands"


class SgeMain(SgeGroup):
    """The ``sge`` group: its own commands and the plug-in commands of PLUGIN_GROUP."""

    def _plugins(self) -> dict:
        from importlib.metadata import entry_points
        return {entry.name: entry for entry in entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in (plugins := self._plugins()):
            command = plugins[name].load()
        return command


@click.group(cls=SgeMain)
@click.version_option(package_name="panda3d-sge")
def main():
    """Per-pixel stochastic gradient estimation for Panda3D assets."""


@main.group(cls=SgeGroup)
def bench():
    """Benchmark scenarios; each prints one JSON object on stdout (logs on stderr)."""


POSITIVE = click.IntRange(min=1)
RESOLUTION = click.IntRange(1, MAX_RESOLUTION)
JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="One JSON line (default: the same, indented).")
PROFILE_FLAG = click.option("--profile", is_flag=True,
                            help="Add passes_ms (P, reference, theta_plus, theta_minus, G, frame: each pass timed by "
                                 "switching it off) and cpu_ms_per_step.")


class OutputDirectory(click.Path):
    """An output directory the job replaces whole: a path Panda3D can write (UTF-8: its
    Filename cannot take other bytes) and not the current directory or one holding it
    (renaming "." fails once the whole run is done; "" means "." too)."""

    def __init__(self):
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        absolute = Path.cwd() / path
        try:
            str(absolute).encode("utf-8")
        except UnicodeEncodeError:
            from .assets import printable_path
            self.fail(f"'{printable_path(absolute)}' is not valid UTF-8, which Panda3D cannot write; "
                      f"choose another name", param, ctx)
        if absolute.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
            self.fail(f"'{value}' is the current directory or holds it, and the job replaces --out whole; "
                      f"give a new directory such as out/lod", param, ctx)
        return path


OUTPUT_DIRECTORY = OutputDirectory()


def _print_json(result: dict, as_json: bool) -> None:
    json.dump(result, sys.stdout, indent=None if as_json else 2)
    sys.stdout.write("\n")


@bench.command()
@click.option("--res", default=64, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--steps", default=1000, show_default=True, type=POSITIVE, help="Optimisation steps per seed.")
@click.option("--seeds", default=3, show_default=True, type=POSITIVE, help="Independent runs (seeds 0..K-1).")
@click.option("--estimator", type=click.Choice(ESTIMATORS), default="per-pixel", show_default=True,
              help="Per-pixel SGE or global SPSA.")
@click.option("--steps-per-frame", default=1, show_default=True, type=click.IntRange(1, MAX_STEPS_PER_FRAME),
              help="SGE steps run inside one engine frame (small scenes: the engine's per-frame work is shared).")
@click.option("--report-steps", default=None, metavar="N,N,...",
              help="Steps at which err and wall_s_at are reported (default 100,300,1000,2000,4000,8000,16000; "
                   "the last step always).")
@click.option("--average-eta", default=None, metavar="ETA|off",
              help="Iterate averaging of the output (polynomial-decay eta >= 0) or 'off' (default: the cube's).")
@click.option("--until-seconds", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Stop each run at the first report step after this much stepping time; the report "
                   "steps are then a dense grid (x1.2 from 100) unless given.")
@PROFILE_FLAG
@JSON_FLAG
def cube(res, steps, seeds, estimator, steps_per_frame, report_steps, average_eta, until_seconds, profile, as_json):
    """nvdiffrast's cube fit (SPEC.md): err and stepping seconds at the report steps, err at
    0.1-10 s of stepping, ms per step."""
    from .bench import bench_cube
    from .scenarios.cube import REPORT_STEPS, dense_report_steps
    try:
        default_steps = REPORT_STEPS if until_seconds is None else dense_report_steps(steps)
        steps_list = default_steps if report_steps is None else tuple(int(v) for v in report_steps.split(","))
        eta = "default" if average_eta is None else None if average_eta == "off" else float(average_eta)
    except ValueError:
        raise SgeError("--report-steps takes integers separated by commas and --average-eta a number or 'off', "
                       f"got '{report_steps}' and '{average_eta}'")
    _print_json(bench_cube(res, steps, seeds, estimator, profile=profile, steps_per_frame=steps_per_frame,
                           report_steps=steps_list, average_eta=eta, until_seconds=until_seconds), as_json)


@bench.command()
@click.option("--steps", default=3000, show_default=True, type=POSITIVE, help="Optimisation steps.")
@click.option("--res", default=256, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--seed", default=0, show_default=True, help="Run seed.")
@click.option("--contributors", type=click.Choice(("bilinear", "mip-aware")), default="bilinear", show_default=True,
              help="Texels a sample names: its 4 level-0 bilinear texels, or its mip footprint spread to level 0.")
@click.option("--mipmaps", is_flag=True, help="Sample the albedo trilinearly (implied by --contributors mip-aware).")
@PROFILE_FLAG
@JSON_FLAG
def texture(steps, res, seed, contributors, mipmaps, profile, as_json):
    """The smiley texture fit: psnr_texture, psnr_views (SPEC.md), ms per step, params."""
    from .bench import bench_texture
    _print_json(bench_texture(res, steps, seed, contributors, mipmaps, profile=profile), as_json)


@bench.command()
@click.option("--texture-size", default=4096, show_default=True, type=click.IntRange(1, MAX_TEXTURE_SIZE),
              help="Width and height of the RGBA texture being optimised.")
@click.option("--res", default=1024, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--steps", default=20, show_default=True, type=POSITIVE, help="Timed steps (each phase).")
@click.option("--color-bits", default=16, show_default=True, type=click.Choice(["16", "32"]),
              help="Float size of the colour plane's channels.")
@click.option("--redraw-reference", is_flag=True,
              help="Draw the reference every step (by default its page is reused: the view is fixed).")
@PROFILE_FLAG
@JSON_FLAG
def scale(texture_size, res, steps, color_bits, redraw_reference, profile, as_json):
    """A texture_size^2 RGBA texture (67M parameters at 4096): ms per step, P vs pixels."""
    from .bench import bench_scale
    _print_json(bench_scale(texture_size, res, steps, profile=profile, color_bits=int(color_bits),
                            reuse_reference=not redraw_reference), as_json)


@bench.command()
@click.option("--grid", default=64, show_default=True, type=click.IntRange(2, 256), help="Voxels per axis (N^3 grid).")
@click.option("--res", default=128, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--steps", default=2000, show_default=True, type=POSITIVE, help="Optimisation steps.")
@click.option("--seconds", default=None, type=str,
              help="Step for these stepping times instead (comma-separated seconds, e.g. 10,30,60; start-up and "
                   "evaluations excluded), reporting psnr_views at each; overrides --steps.")
@click.option("--report-steps", default="", help="Also report psnr_views at these steps (comma-separated).")
@click.option("--coarse-to-fine/--no-coarse-to-fine", default=None,
              help="Start on coarser grids (16^3, 32^3) and upsample (default: the measured better one for the grid).")
@click.option("--seed", default=0, show_default=True, help="Run seed (training cameras from default_rng(seed)).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the fitted grid to this file: .npz (float32 density, color) or .txo (a Panda3D 3D texture).")
@click.option("--steps-per-frame", default=1, show_default=True, type=click.IntRange(1, MAX_STEPS_PER_FRAME),
              help="Steps run inside one renderFrame() (the same results).")
@click.option("--sparse", default=None, type=click.IntRange(1, 64),
              help="Perturb (and update) one voxel block in K per step; 1 perturbs all (default: the volume's).")
@click.option("--average-eta", default=None, metavar="ETA|off",
              help="Evaluate and save the iterate average (polynomial-decay eta >= 0) or 'off' (default: the volume's).")
@PROFILE_FLAG
@JSON_FLAG
def volume(grid, res, steps, seconds, report_steps, coarse_to_fine, seed, save, steps_per_frame, sparse, average_eta,
           profile, as_json):
    """SPEC's volume: an N^3 density + RGB grid fitted to the analytic truth by ray marching."""
    from .bench import bench_volume
    from .volume.scenario import coarse_to_fine_levels
    times = _numbers(seconds, float, "--seconds") if seconds else None
    marks = _numbers(report_steps, int, "--report-steps") if report_steps else ()
    levels = None if coarse_to_fine is None else (coarse_to_fine_levels(grid) if coarse_to_fine else ((), ()))
    if save is not None and save.suffix.lower() not in (".npz", ".txo"):
        raise click.BadParameter(f"'{save}': name it .npz or .txo", param_hint="--save")
    overrides = {} if sparse is None else {"sparse": sparse}
    if average_eta is not None:
        try:
            overrides["average_eta"] = None if average_eta == "off" else float(average_eta)
        except ValueError:
            raise SgeError(f"--average-eta takes a number >= 0 or 'off', got '{average_eta}'")
    _print_json(bench_volume(grid, res, None if times else steps, times, marks, profile, seed, levels, save,
                             steps_per_frame, overrides), as_json)


def _numbers(text: str, kind, option: str) -> list:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a comma-separated list of numbers", param_hint=option) from None
    if not values or any(not (value > 0) for value in values):
        raise click.BadParameter(f"'{text}': give positive numbers", param_hint=option)
    return values


@bench.command()
@click.option("--res", default=512, show_default=True, type=RESOLUTION,
              help="Render width and height in pixels (2x2 supersampled).")
@click.option("--steps", default=300, show_default=True, type=POSITIVE, help="Timed steps.")
@PROFILE_FLAG
@JSON_FLAG
def lod(res, steps, profile, as_json):
    """The demo's LOD (models/panda -> 1,000 triangles, 512^2 maps): ms per step."""
    from .bench import bench_lod
    _print_json(bench_lod(res, steps, profile=profile), as_json)


@bench.command()
@click.option("--cage-triangles", default=500, show_default=True, type=POSITIVE,
              help="Triangles of the cage decimated from the reference.")
@click.option("--levels", default=2, show_default=True, type=click.IntRange(1, 4), help="Catmull-Clark levels.")
@click.option("--res", default=128, show_default=True, type=RESOLUTION, help="Render width and height (2x2 supersampled).")
@click.option("--steps", default=1000, show_default=True, type=POSITIVE, help="Optimisation steps (each fit).")
@click.option("--texture-size", default=512, show_default=True, type=click.IntRange(8, 8192),
              help="Albedo and normal map size.")
@click.option("--displacement-size", default=None, type=click.IntRange(8, 8192),
              help="Displacement map size [default: --texture-size].")
@click.option("--seconds", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Stop each fit's stepping after this many seconds.")
@click.option("--report-every", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Held-out PSNR every this many seconds of stepping (the curve).")
@click.option("--no-lod", is_flag=True, help="Skip the LOD job's fit at the same final triangle count.")
@click.option("--source", default=None, help="Fit this model instead of the procedural bumpy torus.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Run seed.")
@click.option("--bake-views", default=48, show_default=True, type=POSITIVE,
              help="Views of each bake (maps, displacement); the bakes between rounds take half.")
@click.option("--cage-fit-rounds", default=8, show_default=True, type=click.IntRange(min=0),
              help="Rounds of the least-squares cage fit before the bakes (0: the interpolating cage only).")
@click.option("--diagonal-rounds", default=1, show_default=True, type=click.IntRange(min=0),
              help="Rounds of splitting each refined quad along its diagonal nearer the reference, kept "
                   "where the validation views score higher (0: every quad split along its diagonal 0-2).")
@click.option("--lod-decimation", is_flag=True,
              help="Decimate the cage as the LOD job does, not choosing among decimations by their refined silhouettes.")
@PROFILE_FLAG
@JSON_FLAG
def subdivision(cage_triangles, levels, res, steps, texture_size, displacement_size, seconds, report_every, no_lod,
                source, seed, bake_views, cage_fit_rounds, diagonal_rounds, lod_decimation, profile, as_json):
    """The subdivision scenario: a displaced Catmull-Clark cage against the LOD job at equal triangles."""
    from .bench import bench_subdivision
    _print_json(bench_subdivision(cage_triangles, levels, res, steps, texture_size, displacement_size, seconds,
                                  report_every, not no_lod, source, seed, profile=profile, bake_views=bake_views,
                                  cage_fit_rounds=cage_fit_rounds, cage_choice=not lod_decimation,
                                  diagonal_rounds=diagonal_rounds),
                as_json)


@bench.command()
@click.option("--splats", "count", default=30_000, show_default=True, type=click.IntRange(4, 1 << 24),
              help="Number of Gaussian splats (14 parameters each).")
@click.option("--res", default=256, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--steps", default=2000, show_default=True, type=POSITIVE,
              help="Optimisation steps (ignored with --report-seconds).")
@click.option("--report-seconds", default=None, help="Comma-separated times of stepping (s) at which to measure "
              "the held-out views, e.g. 10,30,60,120; the run ends after the last.")
@click.option("--export-views", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the scenario's cameras and images here as a NeRF-synthetic dataset.")
@click.option("--ply", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the fitted splats to this file as a standard 3DGS .ply.")
@PROFILE_FLAG
@JSON_FLAG
def splats(count, res, steps, report_seconds, export_views, ply, profile, as_json):
    """Gaussian splats fitted to models/panda (SPEC.md): psnr_views, ssim_views, ms per step."""
    from .bench import bench_splats
    times = ()
    if report_seconds:
        try:
            times = tuple(float(t) for t in report_seconds.split(","))
        except ValueError:
            raise click.BadParameter(f"expected numbers separated by commas, got '{report_seconds}'",
                                     param_hint="--report-seconds") from None
        if not all(t > 0 for t in times):
            raise click.BadParameter("times must be positive", param_hint="--report-seconds")
    _print_json(bench_splats(count, res, steps, profile=profile, export_views=export_views,
                             report_seconds=times, ply=ply), as_json)


class _CliProgress:
    """Phases as lines on stderr; steps as a progress bar on a terminal, else as a plain
    line every tenth of the run."""

    def __init__(self):
        self.bar = None
        self.last_line = 0

    def message(self, text: str) -> None:
        self.close()
        click.echo(text, err=True)

    def step(self, step: int, steps: int, loss, steps_per_second: float) -> None:
        rate = f"{steps_per_second:.3g} steps/s"  # slow jobs too: "0.42 steps/s", not "0"
        label = f"loss {loss:.5f}  {rate}" if loss is not None else rate
        if sys.stderr.isatty():
            if self.bar is None:
                self.bar = click.progressbar(length=steps, label="optimizing", file=sys.stderr, show_pos=True)
                self.bar.__enter__()
            self.bar.label = label
            self.bar.update(step - self.bar.pos)
        elif step * 10 // steps > self.last_line or step == steps:
            self.last_line = step * 10 // steps
            click.echo(f"step {step}/{steps}  {label}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class TriangleBudgets(click.ParamType):
    """``--triangles``: one budget (``1000``) or a LOD chain, most triangles first
    (``4000,1000,250``); always a tuple of ints. Anything else is one usage line (exit 2)."""

    name = "N[,N...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        if isinstance(value, int):
            value = str(value)
        parts = [part.strip() for part in str(value).split(",")]
        budgets = []
        for part in parts:
            try:
                budgets.append(int(part))
            except ValueError:
                self.fail(f"'{part}' in '{value}' is not a whole number; give a triangle budget such as 1000, "
                          f"or a chain such as 4000,1000,250", param, ctx)
        from .lod.chain import check_chain
        try:
            return tuple(check_chain(budgets))
        except SgeError as error:
            self.fail(str(error).removeprefix("--triangles "), param, ctx)


def _lod_options(function=None, *, steps_help: str = "Optimisation steps."):
    """The LOD job's options; ``@_lod_options`` or ``@_lod_options(steps_help=...)``."""
    if function is None:
        return lambda function: _lod_options(function, steps_help=steps_help)
    options = [
        click.option("--triangles", default="1000", show_default=True, type=TriangleBudgets(),
                     help="Triangle budget of the LOD (at most the source's count), or a LOD chain, most triangles "
                          "first (4000,1000,250): every level, and NAME.lods.bam, a LODNode holding them."),
        click.option("--texture-size", default=512, show_default=True, type=click.IntRange(8, 8192),
                     help="Width and height of the LOD's albedo and normal map."),
        click.option("--steps", default=1000, show_default=True, type=click.IntRange(min=0), help=steps_help),
        click.option("--res", default=128, show_default=True, type=RESOLUTION,
                     help="Render width and height in pixels (renders are 2x2 supersampled)."),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Run seed."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


# The exit status of a job Ctrl-C stopped (128 + SIGINT, as shells report it); its LOD of
# the last finished step is written all the same.
INTERRUPTED_EXIT = 130


# Public for plug-in commands (game's ``sge view``), which take the job's options too.
lod_options = _lod_options


def _run_job(source, out, triangles, texture_size, steps, res, seed, checkpoint_every=None, resume=None,
             force=False, decimate_for_poses=False, coverage_weight=LodSettings.coverage_weight):
    """Run the LOD job (``triangles``: the budgets of --triangles; more than one: a LOD
    chain, optimizer.lod.chain), print the report's path; after Ctrl-C, say where it
    stopped and exit 130."""
    from .lod.job import run_lod_job
    budgets = (triangles,) if isinstance(triangles, int) else tuple(triangles)
    from .lod.scenario import lod_settings
    settings = lod_settings(budgets, texture_size, steps, res, seed, decimate_for_poses, coverage_weight)
    if len(budgets) > 1:
        if checkpoint_every is not None or resume is not None:
            raise click.UsageError("--checkpoint-every and --resume take one --triangles budget, not a chain; "
                                   "run the levels one at a time to checkpoint them")
        return _run_chain(source, out, settings, budgets, force)
    progress = _CliProgress()
    try:
        metrics = run_lod_job(source, out, settings, progress, checkpoint_every=checkpoint_every, resume=resume,
                              force=force)
    finally:
        progress.close()
    click.echo(str(out / "report.png"))
    if metrics["interrupted"] is not None:
        click.echo(f"interrupted at step {metrics['interrupted']} of {metrics['steps_requested']}; "
                   f"wrote the LOD of step {metrics['interrupted']}", err=True)
        sys.exit(INTERRUPTED_EXIT)
    return metrics


def _run_chain(source, out, settings, budgets, force=False):
    """The LOD chain of ``budgets``; prints the report's path, exits 130 after Ctrl-C."""
    from .lod.chain import run_lod_chain
    progress = _CliProgress()
    try:
        metrics = run_lod_chain(source, out, settings, budgets, progress, force=force)
    finally:
        progress.close()
    click.echo(str(out / "report.png"))
    if metrics["interrupted"] is not None:
        stop = metrics["interrupted"]
        click.echo(f"interrupted at step {stop['step']} of level {stop['level']}; wrote the chain with the levels "
                   f"after it made without steps", err=True)
        sys.exit(INTERRUPTED_EXIT)
    return metrics


FORCE_FLAG = click.option("--force", is_flag=True,
                          help="Replace --out even when it is a folder sge did not write (its files are lost).")
DECIMATE_FOR_POSES_FLAG = click.option(
    "--decimate-for-poses", is_flag=True,
    help="Skinned sources: decimate for sample poses of the skeleton too, keeping vertices where joints bend "
         "(posed quality for some bind-pose PSNR: docs/SKINNING.md).")
COVERAGE_WEIGHT_OPTION = click.option(
    "--coverage-weight", type=float, default=LodSettings.coverage_weight, show_default=True,
    help="Weight of the silhouette term of the per-pixel loss (LodSettings.coverage_weight); 0 turns it off "
         "(docs/BENCHMARKS.md).")


@main.command()
@click.argument("source")
@_lod_options
@click.option("--out", type=OUTPUT_DIRECTORY, required=True,
              help="Output directory (written whole or not at all; an earlier result of sge there is replaced).")
@FORCE_FLAG
@click.option("--checkpoint-every", type=POSITIVE, default=None,
              help="Write the whole state to OUT.checkpoint/ every N steps (atomically).")
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="Continue from OUT.checkpoint (its settings are used); ends as an uninterrupted run would.")
@DECIMATE_FOR_POSES_FLAG
@click.option("--subdivision", type=click.IntRange(1, 4), default=None,
              help="Fit a Catmull-Clark cage refined this many levels, with a displacement map, instead of a LOD "
                   "(the cage: SOURCE decimated to --triangles, or --cage).")
@click.option("--cage", type=click.Path(path_type=Path), default=None,
              help="With --subdivision: the control cage, an .obj of triangles and quads with UVs (quads kept).")
@COVERAGE_WEIGHT_OPTION
def optimize(source, triangles, texture_size, steps, res, seed, out, force, checkpoint_every, resume,
             decimate_for_poses, subdivision, cage, coverage_weight):
    """Make an optimised LOD of SOURCE (a model file, or a name on Panda3D's model-path
    such as models/panda): decimate, unwrap, optimise geometry, albedo and normal map
    against the source, and write .bam/.egg/.obj/.glb, textures, report.png and
    metrics.json. A source already within --triangles keeps its own triangles. With a
    chain (--triangles 4000,1000,250) every level goes into its own subfolder (lod0/,
    lod1/, ...) beside NAME.lods.bam, a LODNode holding them with switch distances. Ctrl-C stops the
    optimisation, writes the LOD of the last finished step and exits with status 130.
    With --subdivision L: a displaced Catmull-Clark surface instead (README: NAME.cage.obj,
    NAME_displacement.png, the refined mesh; metrics beside the LOD job at equal triangles)."""
    if cage is not None and subdivision is None:
        raise click.UsageError("--cage gives a subdivision cage; add --subdivision LEVELS")
    if subdivision is not None:
        budgets = (triangles,) if isinstance(triangles, int) else tuple(triangles)
        if len(budgets) > 1:
            raise click.UsageError("--subdivision takes one --triangles budget (the cage's), not a chain")
        if checkpoint_every is not None or resume is not None or decimate_for_poses:
            raise click.UsageError("--subdivision runs without --checkpoint-every, --resume and --decimate-for-poses")
        from .lod.scenario import lod_settings
        from .subdivision.job import run_subdivision_job
        progress = _CliProgress()
        try:
            run_subdivision_job(source, out, lod_settings(budgets, texture_size, steps, res, seed,
                                                          coverage_weight=coverage_weight), subdivision, cage,
                                progress, force)
        finally:
            progress.close()
        click.echo(str(out / "report.png"))
        return
    _run_job(source, out, triangles, texture_size, steps, res, seed, checkpoint_every, resume, force,
             decimate_for_poses, coverage_weight)


class _BatchProgress:
    """A line per asset as it ends, on stderr; on a terminal, a progress bar over the
    assets below them."""

    def __init__(self):
        self.bar = None
        self.total = 0

    def message(self, text: str) -> None:
        self._line(text)

    def retry(self, asset, error: str) -> None:
        self._line(f"{asset.name}: failed ({error}); running it once more")

    def asset(self, asset, finished: int, total: int) -> None:
        row = asset.row
        if row["status"] in ("done", "skipped"):
            psnr = " / ".join(f"{row.get(key) or 0:.2f}" for key in ("psnr_before", "psnr_baseline"))
            text = f"{asset.name}: {row['status']}, {row.get('triangles')} triangles, PSNR {psnr} -> " \
                   f"{row.get('psnr_after') or 0:.2f} dB (written: {row.get('written')}), " \
                   f"{row.get('seconds') or 0:.1f} s on {row.get('worker')}"
        else:
            text = f"{asset.name}: {row['status']}" + (f" ({row['error']})" if row["error"] else "")
            if row.get("again"):
                text += "; so it did in the last run, with the same file and options: not run again (--retry-failed)"
        self._line(f"[{finished}/{total}] {text}")
        if sys.stderr.isatty():
            if self.bar is None:
                self.bar = click.progressbar(length=total, label="assets", file=sys.stderr, show_pos=True)
                self.bar.__enter__()
            self.bar.update(finished - self.bar.pos)

    def _line(self, text: str) -> None:
        if self.bar is not None:  # over the bar's line; the bar is drawn again below it
            click.echo("\r\033[K" + text, err=True)
            self.bar.render_progress()
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@main.command()
@click.argument("sources", nargs=-1, required=True)
@_lod_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory: OUT/<asset name>/ per asset (each written whole or not at all), "
                   "OUT/summary.csv and OUT/summary.json.")
@FORCE_FLAG
@DECIMATE_FOR_POSES_FLAG
@COVERAGE_WEIGHT_OPTION
@click.option("--workers", type=POSITIVE, default=None,
              help="Assets optimised at once: worker processes of a local Ray (default: one per CPU core); with "
                   "--address, the most tasks in flight (default: as many as the cluster runs).")
@click.option("--address", default=None,
              help="Join this Ray cluster (auto, or HOST:PORT of its head) instead of starting a local Ray.")
@click.option("--gpus-per-task", type=click.FloatRange(min=0, min_open=True), default=None,
              help="GPUs each asset's task asks Ray for (1: one GPU per task); refused at once where there are none.")
@click.option("--retry-failed", is_flag=True,
              help="Run again the assets whose job failed in the last run with the same file and options (by "
                   "default a rerun reports them failed without running them: they would fail the same way).")
def batch(sources, out, force, workers, address, gpus_per_task, retry_failed, **lod_options):
    """Make the LOD of every model in SOURCES (files, or names on Panda3D's model-path) on
    Ray, with the options of sge optimize. Each asset's outputs go to OUT/NAME, NAME its
    file's name without extensions (same names: numbered -2, -3, ... in the order of their
    full paths). A failed asset is run once more, then reported; the batch goes on. A rerun
    skips assets whose outputs are complete for the same source bytes and options, and
    those whose job failed in the last run with them (unless --retry-failed). Ctrl-C
    stops the tasks in flight, whose assets write nothing, and exits with status 130.
    Prints the summary's path; exits with status 1 when an asset failed."""
    from .lod.batch import FAILED, SUMMARY_CSV, run_batch
    progress = _BatchProgress()
    try:
        result = run_batch(list(sources), out, lod_options, workers=workers, address=address,
                           gpus_per_task=gpus_per_task, force=force, retry_failed=retry_failed, progress=progress)
    except KeyboardInterrupt:  # outside the task loop (Ray starting), or a second Ctrl-C
        progress.close()
        click.echo("interrupted; the assets finished before it are kept, nothing is half-written", err=True)
        sys.exit(INTERRUPTED_EXIT)
    finally:
        progress.close()
    click.echo(str(out / SUMMARY_CSV))
    done, skipped, failed = (result.count(status) for status in ("done", "skipped", FAILED))
    if result.interrupted:
        click.echo(f"interrupted: {done} assets done, {skipped} skipped as already done, "
                   f"{len(result.assets) - done - skipped - failed} not finished (nothing of theirs written); "
                   f"the same command again finishes them", err=True)
        sys.exit(INTERRUPTED_EXIT)
    if failed:
        names = ", ".join(asset.name for asset in result.assets if asset.row["status"] == FAILED)
        raise click.ClickException(f"{failed} of {len(result.assets)} assets failed ({names}); "
                                   f"{out / SUMMARY_CSV} says why")
    click.echo(f"{done} done, {skipped} skipped as already done (of {len(result.assets)} assets)", err=True)


DEMO_SOURCE = "models/panda"
DEMO_STEPS = 1400


@main.command()
@click.option("--out", type=OUTPUT_DIRECTORY, default=Path("out/demo"), show_default=True,
              help="Output directory (an earlier result of sge there is replaced).")
@FORCE_FLAG
@click.option("--steps", default=DEMO_STEPS, show_default=True, type=click.IntRange(min=0),
              help="Optimisation steps (the default fits the demo in a minute on 2 CPU cores).")
def demo(out, force, steps):
    """The main job on the embedded default: Panda3D's models/panda to 1,000 triangles and
    512^2 textures, outputs in out/demo/; prints the report's path."""
    _run_job(DEMO_SOURCE, out, (1000,), 512, steps, 128, 0, force=force)


@main.group(cls=SgeGroup)
def experiment():
    """Experiments behind docs/METHOD.md; each writes a CSV and a PNG plot into --out."""


@experiment.command()
@click.option("--quick", is_flag=True, help="Textures up to 256^2 and meshes up to 10,242 vertices (a CPU in "
                                             "<= 15 min); otherwise up to 1024^2 and 163,842 vertices.")
@click.option("--steps", default=300, show_default=True, type=POSITIVE, help="Optimisation steps per run.")
@click.option("--seeds", default=1, show_default=True, type=POSITIVE, help="Seeds per configuration (0..K-1).")
@click.option("--res", default=128, show_default=True, type=RESOLUTION, help="Render width and height in pixels.")
@click.option("--equal-estimates", "estimates", default=None, type=click.FloatRange(min=1), metavar="E",
              help="Equal estimates per parameter: each run takes E / f steps, f the fraction of the parameters "
                   "a step names (measured first), so a parameter is named in E steps on average "
                   "(writes dimension_equal.csv/png); default: STEPS for every size (equal compute).")
@click.option("--texture-sizes", default=None, metavar="S,S,...", help="Texture sizes to run (default: all).")
@click.option("--subdivisions", default=None, metavar="K,K,...",
              help="Icosphere subdivision levels to run, 10 * 4^K + 2 vertices (default: all).")
@click.option("--include", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSV of earlier runs (other sizes) to plot with these.")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A CSV of equal-compute runs (dimension.csv) to draw beside these, thin.")
@click.option("--steps-per-frame", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Steps per engine frame (the same results, faster on a GPU).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory: dimension.csv and dimension.png.")
def dimension(quick, steps, seeds, res, estimates, texture_sizes, subdivisions, include, baseline,
              steps_per_frame, out):
    """Final error against parameter count for per-pixel SGE and global SPSA: the texture
    fit at 8^2 .. 1024^2 texels and a bumpy-sphere fit at 162 .. 163,842 vertices."""
    from .experiments.dimension import DimensionSettings, read_csv, run_dimension
    try:
        sizes = None if texture_sizes is None else tuple(int(v) for v in texture_sizes.split(",") if v)
        levels = None if subdivisions is None else tuple(int(v) for v in subdivisions.split(",") if v)
    except ValueError:
        raise SgeError(f"--texture-sizes and --subdivisions take integers separated by commas, "
                       f"got '{texture_sizes}' and '{subdivisions}'")
    try:
        included = [row for path in include for row in read_csv(path)]
        baseline_rows = read_csv(baseline) if baseline else []
    except (KeyError, ValueError) as error:
        raise SgeError(f"--include/--baseline: not a dimension CSV ({error}); give a file this command wrote")
    settings = DimensionSettings(steps=steps, seeds=seeds, resolution=res, estimates_per_parameter=estimates,
                                 steps_per_frame=steps_per_frame)
    run_dimension(out, quick, settings, texture_sizes=sizes, subdivisions=levels, include_rows=included,
                  baseline_rows=baseline_rows)
    click.echo(str(out / ("dimension_equal.png" if estimates else "dimension.png")))


@experiment.command()
@click.option("--samples", default=1000, show_default=True, type=POSITIVE,
              help="K: single-step estimates averaged (the CSV reports K = 1, 10, 100, ... up to this).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory: accuracy.csv and accuracy.png.")
def accuracy(samples, out):
    """The mean of K un-normalised single-step estimates against central finite
    differences of the summed loss (texels and vertex positions, both estimators)."""
    from .experiments.accuracy import run_accuracy
    run_accuracy(out, samples)
    click.echo(str(out / "accuracy.png"))


@experiment.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory: sweep.csv.")
def sweep(out):
    """Per-pixel final error with epsilon, then the learning rate, scaled 1/4x .. 4x (the
    texture fit at 64^2 and the sphere of 642 vertices, 300 steps)."""
    from .experiments.dimension import run_sweep
    run_sweep(out)
    click.echo(str(out / "sweep.csv"))


if __name__ == "__main__":
    main()
