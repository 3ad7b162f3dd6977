"""Checkpoints, resume, kills and divergence guards of the LOD job: a run killed with
SIGKILL leaves its last checkpoint intact and no output directory, and resumed from it
ends bit-identical to a run never interrupted; a run whose parameters turn NaN stops
with one clear line and keeps its last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from optimizer.errors import SgeError
from optimizer.lod.job import LodSession, checkpoint_path, read_checkpoint
from optimizer.lod.scenario import LodSettings
from optimizer.source import load_source
from procedural import bumpy_sphere, textured_bumpy_obj, write_obj
from test_cli import run_sge
from test_lod import _env

JOB = ["--triangles", "80", "--texture-size", "64", "--res", "64", "--steps", "400"]


@pytest.fixture(scope="module")
def bumpy(tmp_path_factory):
    return textured_bumpy_obj(tmp_path_factory.mktemp("checkpoint-assets"))


def outputs(directory) -> dict:
    """What must match between two runs: the LOD's geometry (full float precision in the
    .obj), both texture maps and the held-out scores."""
    metrics = json.loads((directory / "metrics.json").read_text())
    return {"obj": (directory / "bumpy.obj").read_text(), "albedo": (directory / "bumpy_albedo.png").read_bytes(),
            "normal": (directory / "bumpy_normal.png").read_bytes(),
            "scores": [metrics[k] for k in ("psnr_after", "ssim_after", "iou_after", "steps")]}


# Stops the job's run at a given step, its last checkpoint written there: a resume point
# anywhere in the schedule, not only where checkpoint_every lands.
STOP_AT = """
import sys
from pathlib import Path
from optimizer.gpu import GpuContext
from optimizer.lod.job import LodSession, checkpoint_path
from optimizer.lod.scenario import LodSettings
from optimizer.source import load_source
source, out, until = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
settings = LodSettings(triangles=80, texture_size=64, resolution=64, steps=400)
session = LodSession(load_source(source), settings, GpuContext.headless())
session.checkpoint_dir = checkpoint_path(out)
session.run(until, checkpoint_every=50)
"""


@pytest.fixture(scope="module")
def straight(bumpy, tmp_path_factory):
    """The outputs of the job never interrupted."""
    out = tmp_path_factory.mktemp("straight") / "lod"
    result = run_sge(["optimize", str(bumpy), *JOB, "--out", str(out)], out.parent, timeout=300)
    assert result.returncode == 0, result.stderr
    return outputs(out)


def resume(bumpy, out, tmp_path, step: int) -> dict:
    result = run_sge(["optimize", str(bumpy), *JOB, "--out", str(out), "--resume", str(checkpoint_path(out))],
                     tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resumed at step {step} " in result.stderr
    return outputs(out)


def test_killed_run_resumes_bit_identical(bumpy, straight, tmp_path):
    """SIGKILL once the run is past its second round's first checkpoint (a bake and an
    unfold behind it), then --resume: the same outputs as the run never interrupted."""
    out = tmp_path / "killed"
    state = checkpoint_path(out) / "state.npz"
    process = subprocess.Popen([sys.executable, "-m", "optimizer", "optimize", str(bumpy), *JOB, "--out", str(out),
                                "--checkpoint-every", "50"], cwd=tmp_path, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    step = 0
    while step < 150 and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
        if state.exists():
            step = read_checkpoint(checkpoint_path(out))[0]["step"]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not out.exists()  # never a half-written output directory
    meta, _ = read_checkpoint(checkpoint_path(out))  # intact and complete
    assert 150 <= meta["step"] < 400 and meta["step"] % 50 == 0
    assert resume(bumpy, out, tmp_path, meta["step"]) == straight


# The job's schedule (400 steps, 4 rounds): bakes after steps 100, 200, 300 and 400, an
# unfold before every 50th step but those.
@pytest.mark.parametrize("step", [50, 200, 151, 350],
                         ids=["first-checkpoint", "at-a-bake", "after-an-unfold", "inside-the-last-round"])
def test_resume_from_any_point_of_the_schedule_is_bit_identical(bumpy, straight, tmp_path, step):
    out = tmp_path / "lod"
    stopped = subprocess.run([sys.executable, "-c", STOP_AT, str(bumpy), str(out), str(step)], cwd=tmp_path,
                             env=_env(), capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert read_checkpoint(checkpoint_path(out))[0]["step"] == step
    assert resume(bumpy, out, tmp_path, step) == straight


def test_resume_refuses_another_source(bumpy, tmp_path):
    out = tmp_path / "lod"
    result = run_sge(["optimize", str(bumpy), *JOB[:-1], "20", "--out", str(out), "--checkpoint-every", "10"],
                     tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    positions, triangles, uvs, normals = bumpy_sphere(3, 0.1, seed=1)
    other = write_obj(tmp_path / "other.obj", positions, triangles, uvs, normals)
    result = run_sge(["optimize", str(other), "--out", str(tmp_path / "again"), "--resume", str(checkpoint_path(out))],
                     tmp_path, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "was made from another source" in result.stderr
    assert not (tmp_path / "again").exists()


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(context, bumpy, tmp_path):
    session = LodSession(load_source(bumpy), LodSettings(triangles=80, texture_size=32, resolution=32, steps=100),
                         context)
    try:
        session.checkpoint_dir = tmp_path / "lod.checkpoint"
        session.run(20, checkpoint_every=10)
        good, good_arrays = read_checkpoint(session.checkpoint_dir)
        assert good["step"] == 20
        # Something drives a parameter to NaN (a bad learning rate, a bad asset): the GPU
        # flags it and the next look at the flags stops the run.
        positions = session.scenario.mesh.positions
        state = positions.state(context)
        state["theta"][3, 1] = np.nan
        positions.load_state(state)
        with pytest.raises(SgeError, match=r"diverged at step (2[0-9]|30) \(a parameter became NaN") as error:
            session.run(60, checkpoint_every=10)
        assert "\n" not in str(error.value) and "lod.checkpoint" in str(error.value)
        kept, kept_arrays = read_checkpoint(session.checkpoint_dir)
        assert kept["step"] == 20  # the last good one, untouched
        assert all(np.array_equal(kept_arrays[k], good_arrays[k]) for k in good_arrays)
        assert all(np.all(np.isfinite(v)) for v in kept_arrays.values())
    finally:
        session.release()


def test_a_damaged_checkpoint_is_one_clear_line(tmp_path):
    directory = tmp_path / "lod.checkpoint"
    directory.mkdir()
    (directory / "state.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SgeError, match="is damaged"):
        read_checkpoint(directory)
    with pytest.raises(SgeError, match="is not a checkpoint"):
        read_checkpoint(tmp_path)
    assert os.listdir(directory) == ["state.npz"]


def test_a_checkpoint_of_another_format_is_one_clear_line(tmp_path):
    directory = tmp_path / "lod.checkpoint"
    directory.mkdir()
    meta = {"version": 2, "step": 10, "settings": {}, "source_sha256": "0" * 64}
    np.savez(directory / "state.npz", meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with pytest.raises(SgeError, match=r"is of format 2, and this sge reads format 5; start afresh") as error:
        read_checkpoint(directory)
    assert "\n" not in str(error.value)


def test_degenerate_and_flipped_triangles_are_not_fatal(context, bumpy, tmp_path):
    """A LOD triangle collapsed or turned over is not fatal: the run goes on, unfold puts
    both back (a zero-area triangle faces nowhere, which counts as turned), and the LOD
    exports with none turned."""
    session = LodSession(load_source(bumpy), LodSettings(triangles=80, texture_size=32, resolution=32, steps=40),
                         context)
    try:
        positions = session.scenario.mesh.positions
        state = positions.state(context)
        corners = session.scenario.corners
        a, b, c = corners[0]
        state["theta"][b] = state["theta"][a]          # triangle 0 collapses to a line
        d, e, f = corners[5]
        centre = state["theta"][[d, e, f]].mean(axis=0)
        state["theta"][d] = 2 * centre - state["theta"][d]  # triangle 5 folds over: flipped
        positions.load_state(state)
        session.run(40)
        metrics = session.save(tmp_path / "lod")
        assert metrics["steps"] == 40 and np.isfinite(metrics["psnr_after"])
        assert np.all(np.isfinite(session.losses()))
        final = positions.values(context).astype(np.float64)
        assert not session.scenario.turned_over(final).any()
    finally:
        session.release()
