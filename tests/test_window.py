"""``sge view`` and the in-game component in a real Panda3D window (GLX) under Xvfb: the
viewer's screenshot shows both models, and in a window the LOD's pixels change, draw
nearer the reference's, and the loss falls. Skipped, with the reason, where no X server
can be had (.ci/run installs xvfb)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import optimizer
from procedural import bumpy_sphere, checker_texture, write_obj
from test_cli import run_sge

SCRIPT = Path(__file__).with_name("window_script.py")
NO_X = "no X server and no xvfb-run: install xvfb"


def x_prefix() -> list[str]:
    """How to run a command with an X display: under xvfb-run (preferred: no window pops
    up on a desktop), else on the display already set; skip when neither is there."""
    if shutil.which("xvfb-run"):
        return ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24"]
    if os.environ.get("DISPLAY"):
        return []
    pytest.skip(NO_X)


def run_in_x(args: list[str], cwd: Path, timeout: float = 120, extra_env=None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh process with an X display, importing this same package."""
    env = dict(os.environ)
    package_root = str(Path(optimizer.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.update(extra_env or {})
    return subprocess.run([*x_prefix(), sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def bumpy_obj(tmp_path_factory) -> Path:
    """A bumpy checker-textured sphere (1280 triangles) as .obj + .mtl + .png."""
    folder = tmp_path_factory.mktemp("window-assets")
    positions, triangles, uvs, normals = bumpy_sphere(3, 0.25)
    return write_obj(folder / "bumpy.obj", positions, triangles, uvs, normals, texture_png="checker.png",
                     texture_rgb8=checker_texture(64))


def test_view_screenshot_shows_the_reference_and_the_lod(bumpy_obj, tmp_path):
    shot = tmp_path / "shot.png"
    result = run_in_x(["-m", "optimizer", "view", str(bumpy_obj), "--triangles", "80", "--texture-size", "64",
                       "--res", "64", "--frames", "40", "--screenshot", str(shot)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(shot)
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (576, 1024, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500  # shaded, textured: not blank
    # The models, between the status text (top) and the key help (bottom): the reference
    # in the left half, the LOD in the right half, each covering a good part of it.
    height, width = image.shape[:2]
    band = image[height // 8: height * 7 // 8]
    background = band[:, width // 2].mean(axis=0)  # the gap between the two
    covered = np.abs(band - background).max(axis=2) > 16
    left, right = covered[:, : width // 2].mean(), covered[:, width // 2:].mean()
    assert left > 0.1 and right > 0.1, (left, right)
    assert abs(left - right) < 0.5 * max(left, right), (left, right)  # the same size, near enough


def test_in_a_window_the_lod_changes_and_the_loss_falls(bumpy_obj, tmp_path):
    result = run_in_x([str(SCRIPT), str(bumpy_obj), "--early", "5", "--frames", "60"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == 65  # one per frame (budget_ms=0)
    assert report["lod_pixels"] > 5000 and report["reference_pixels"] > 5000, report
    assert report["changed_pixels"] > 0.5 * report["lod_pixels"], report
    # The LOD on screen drew nearer the reference on screen, and the loss fell
    # (measured: error 48.9 -> 35.8 levels, loss 0.032 -> 0.021).
    assert report["error_last"] < 0.85 * report["error_first"], report
    assert report["last_loss"] < 0.85 * report["first_loss"], report
    assert report["moved_while_paused"] == 0.0 and report["steps_while_paused"] == 0, report


def test_view_without_a_display_is_one_clear_error(bumpy_obj, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(Path(optimizer.__file__).resolve().parent.parent)
    result = subprocess.run([sys.executable, "-m", "optimizer", "view", str(bumpy_obj)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["Error: cannot open a window (no X display); run it under xvfb-run -a, "
                     "or use sge optimize for headless runs"], result.stderr


def test_view_of_a_missing_model_is_one_clear_error(tmp_path):
    result = run_sge(["view", str(tmp_path / "nothing.obj")], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [
        f"Error: cannot find '{tmp_path / 'nothing.obj'}': no such file, and no model of that name on Panda3D's model-path"]


def test_component_refines_a_given_lod_and_makes_an_lod_node(bumpy_obj, tmp_path):
    positions, triangles, uvs, normals = bumpy_sphere(2, 0.25)  # 320 triangles, spherical UVs
    lod = write_obj(tmp_path / "coarse.obj", positions, triangles, uvs, normals)
    result = run_in_x([str(Path(__file__).with_name("window_given_lod.py")), str(bumpy_obj), str(lod)], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["triangles"] == 320 and report["lod_model_triangles"] == 320
    assert report["moved"] > 0.0  # the given LOD's vertices are optimised
    assert report["switch_type"] == "LODNode" and report["switch_children"] == [1280, 320]
