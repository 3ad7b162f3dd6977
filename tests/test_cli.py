"""The ``sge`` command line: option validation (exit 2), the JSON of a benchmark run, and
one clear line (exit 1, no traceback) when the GL context lacks compute shaders."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import optimizer
from optimizer.cli import main


def run_sge(args, tmp_path, extra_env=None, timeout=120):
    """``python -m optimizer ARGS`` in a fresh process, importing this same package."""
    env = dict(os.environ)
    package_root = str(Path(optimizer.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "optimizer", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, option", [
    (["--res", "0"], "--res"),
    (["--res", "5000"], "--res"),
    (["--steps", "-3"], "--steps"),
    (["--seeds", "0"], "--seeds"),
    (["--estimator", "bogus"], "--estimator"),
])
def test_invalid_options_exit_2(args, option):
    result = CliRunner().invoke(main, ["bench", "cube", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and option in result.output
    assert "Traceback" not in result.output


def test_invalid_estimator_names_the_choices():
    result = CliRunner().invoke(main, ["bench", "cube", "--estimator", "bogus"])
    assert "'bogus'" in result.output and "per-pixel" in result.output and "global" in result.output


@pytest.mark.parametrize("estimator", ["per-pixel", "global"])
def test_bench_cube_json(tmp_path, estimator):
    result = run_sge(["bench", "cube", "--res", "16", "--steps", "100", "--seeds", "1",
                      "--estimator", estimator, "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # logs go to stderr
    report = json.loads(lines[0])
    for key in ("err", "ms_per_step", "steps_per_s", "device", "estimator", "res", "seeds"):
        assert key in report, key
    assert list(report["err"]) == ["100"]
    assert 0.0 < report["err"]["100"] < 1.0
    assert report["ms_per_step"] > 0 and math.isfinite(report["ms_per_step"])
    assert report["steps_per_s"] == pytest.approx(1000.0 / report["ms_per_step"])
    assert isinstance(report["device"], str) and report["device"]
    assert report["estimator"] == estimator
    assert report["res"] == 16 and report["seeds"] == 1


def test_no_compute_shaders_is_one_clear_error(context, tmp_path):
    if "llvmpipe" not in context.renderer:
        pytest.skip(f"needs Mesa llvmpipe to hide compute shaders, have {context.renderer}")
    result = run_sge(["bench", "cube", "--res", "16", "--steps", "1", "--seeds", "1"], tmp_path,
                     {"MESA_GL_VERSION_OVERRIDE": "3.3", "MESA_EXTENSION_OVERRIDE": "-GL_ARB_compute_shader"})
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "compute" in lines[0] and "llvmpipe" in lines[0]
    assert result.stdout == ""


def test_no_layered_rendering_is_one_clear_error(context, tmp_path):
    if "llvmpipe" not in context.renderer:
        pytest.skip(f"needs Mesa llvmpipe to hide an extension, have {context.renderer}")
    result = run_sge(["bench", "cube", "--res", "16", "--steps", "1", "--seeds", "1"], tmp_path,
                     {"MESA_EXTENSION_OVERRIDE": "-GL_ARB_shader_viewport_layer_array"})
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "GL_ARB_shader_viewport_layer_array" in lines[0] and "llvmpipe" in lines[0]
    assert result.stdout == ""


def test_bench_texture_json(tmp_path):
    result = run_sge(["bench", "texture", "--steps", "20", "--res", "64", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scenario"] == "texture" and report["steps"] == 20 and report["res"] == 64
    assert report["params"] == 512 * 256 * 3  # the smiley's own texture size, RGB
    assert 0 < report["seen_texels"] <= 512 * 256
    for key in ("psnr_texture", "psnr_views", "ms_per_step"):
        assert math.isfinite(report[key]) and report[key] > 0, key


def test_bench_scale_json(tmp_path):
    result = run_sge(["bench", "scale", "--texture-size", "64", "--res", "32", "--steps", "3", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params"] == 64 * 64 * 4 and report["texture_size"] == 64
    assert report["ms_per_step"] > 0 and report["p_ms_per_step"] > 0
    assert report["pixel_ms_per_step"] == pytest.approx(max(0.0, report["ms_per_step"] - report["p_ms_per_step"]))
    # State (3 floats), theta+/- (two RGBA32F textures) and accumulators at least.
    assert report["peak_gpu_mib"] * 2 ** 20 >= 64 * 64 * 4 * 4 * (3 + 2)


def test_bench_scale_refuses_a_texture_beyond_the_limit():
    result = CliRunner().invoke(main, ["bench", "scale", "--texture-size", "20000"])
    assert result.exit_code == 2 and "--texture-size" in result.output


def test_bench_profile_reports_every_pass(tmp_path):
    result = run_sge(["bench", "cube", "--res", "16", "--steps", "40", "--seeds", "1", "--profile", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["passes_ms"]) == {"P", "reference", "theta_plus", "theta_minus", "G", "frame"}
    assert all(value >= 0.0 for value in report["passes_ms"].values())
    assert report["cpu_ms_per_step"] > 0 and report["profiled_ms_per_step"] > 0
