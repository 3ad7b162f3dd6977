"""The ``sge`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import SgeError
from .sge import ESTIMATORS
from .texture import MAX_TEXTURE_SIZE


# The renders are supersampled 3x3 (CubeSettings): 2048 px -> 6144^2 float targets.
MAX_RESOLUTION = 2048


class SgeGroup(click.Group):
    """Turns SgeError into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SgeError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=SgeGroup)
@click.version_option(package_name="panda3d-sge")
def main():
    """Per-pixel stochastic gradient estimation for Panda3D assets."""


@main.group(cls=SgeGroup)
def bench():
    """Benchmark scenarios; each prints one JSON object on stdout (logs on stderr)."""


POSITIVE = click.IntRange(min=1)
RESOLUTION = click.IntRange(1, MAX_RESOLUTION)
JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="One JSON line (default: the same, indented).")


def _print_json(result: dict, as_json: bool) -> None:
    json.dump(result, sys.stdout, indent=None if as_json else 2)
    sys.stdout.write("\n")


@bench.command()
@click.option("--res", default=64, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--steps", default=1000, show_default=True, type=POSITIVE, help="Optimisation steps per seed.")
@click.option("--seeds", default=3, show_default=True, type=POSITIVE, help="Independent runs (seeds 0..K-1).")
@click.option("--estimator", type=click.Choice(ESTIMATORS), default="per-pixel", show_default=True,
              help="Per-pixel SGE or global SPSA.")
@JSON_FLAG
def cube(res, steps, seeds, estimator, as_json):
    """nvdiffrast's cube fit (SPEC.md): err at steps 100/300/1000, ms per step."""
    from .bench import bench_cube
    _print_json(bench_cube(res, steps, seeds, estimator), as_json)


@bench.command()
@click.option("--steps", default=3000, show_default=True, type=POSITIVE, help="Optimisation steps.")
@click.option("--res", default=256, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--seed", default=0, show_default=True, help="Run seed.")
@click.option("--contributors", type=click.Choice(("bilinear", "mip-aware")), default="bilinear", show_default=True,
              help="Texels a sample names: its 4 level-0 bilinear texels, or its mip footprint spread to level 0.")
@click.option("--mipmaps", is_flag=True, help="Sample the albedo trilinearly (implied by --contributors mip-aware).")
@JSON_FLAG
def texture(steps, res, seed, contributors, mipmaps, as_json):
    """The smiley texture fit: psnr_texture, psnr_views (SPEC.md), ms per step, params."""
    from .bench import bench_texture
    _print_json(bench_texture(res, steps, seed, contributors, mipmaps), as_json)


@bench.command()
@click.option("--texture-size", default=4096, show_default=True, type=click.IntRange(1, MAX_TEXTURE_SIZE),
              help="Width and height of the RGBA texture being optimised.")
@click.option("--res", default=1024, show_default=True, type=RESOLUTION, help="Image width and height in pixels.")
@click.option("--steps", default=20, show_default=True, type=POSITIVE, help="Timed steps (each phase).")
@JSON_FLAG
def scale(texture_size, res, steps, as_json):
    """A texture_size^2 RGBA texture (67M parameters at 4096): ms per step, P vs pixels."""
    from .bench import bench_scale
    _print_json(bench_scale(texture_size, res, steps), as_json)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("out/demo"), show_default=True,
              help="Output directory (replaced if it exists).")
@click.option("--steps", default=1000, show_default=True, type=POSITIVE, help="Optimisation steps.")
def demo(out, steps):
    """The main job on the embedded default (for now: the cube fit, before/after image)."""
    from .demo import run_cube_demo
    report = run_cube_demo(out, steps=steps, log=lambda message: click.echo(message, err=True))
    click.echo(str(report))


if __name__ == "__main__":
    main()
