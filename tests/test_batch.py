"""`sge batch` end to end on a local Ray, through the real CLI (subprocesses): a small
library of three procedural assets and a malformed file ends with three done and one
failed (one line of why), a second run does no work, Ctrl-C keeps what was there and
writes nothing half, a GPU asked of a machine without one is one line. The rules that
need no Ray (names, the rerun's skip test, the options shared with `sge optimize`) are
checked directly."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from optimizer.lod.batch import completed_record, plan_assets
from optimizer.lod.batch_task import scratch_root
from optimizer.cli import main
from procedural import bumpy_sphere, checker_texture, write_corrupt, write_glb, write_obj
from test_cli import run_sge
from test_lod import _default_sigint, _env

SMALL_JOB = ["--triangles", "80", "--texture-size", "32", "--res", "32", "--steps", "20"]
LOD_OUTPUTS = {".sge-output", "metrics.json", "report.png", "batch.json"}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Three small assets (320-triangle bumpy spheres: two .obj, one textured .glb) and a
    truncated .obj."""
    folder = tmp_path_factory.mktemp("library")
    for seed, name in enumerate(["pebble", "stone"]):
        positions, triangles, uvs, normals = bumpy_sphere(2, 0.25, seed=seed)
        write_obj(folder / f"{name}.obj", positions, triangles, uvs, normals)
    positions, triangles, uvs, normals = bumpy_sphere(2, 0.25, seed=2)
    write_glb(folder / "rock.glb", positions, triangles, uvs, normals, texture_rgb8=checker_texture(16))
    write_corrupt(folder / "broken.obj", "truncated-obj")
    return folder


def sources(library) -> list[str]:
    return [str(library / name) for name in ("pebble.obj", "stone.obj", "rock.glb", "broken.obj")]


def summary(out) -> list[dict]:
    with open(out / "summary.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes' modification time."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in sorted(folder.rglob("*"))}


@dataclass
class Run:
    result: subprocess.CompletedProcess
    seconds: float
    rows: list[dict]  # summary.csv as it ended
    document: dict  # summary.json as it ended
    files: dict  # snapshot() of OUT as it ended


@pytest.fixture(scope="module")
def runs(library, tmp_path_factory):
    """OUT, and two runs of `sge batch` over the library with 2 local workers: the first,
    then the same command again."""
    work = tmp_path_factory.mktemp("batch")
    out = work / "lods"
    made = []
    for _ in range(2):
        started = time.perf_counter()
        result = run_sge(["batch", *sources(library), *SMALL_JOB, "--workers", "2", "--out", str(out)], work,
                         timeout=90)
        made.append(Run(result, time.perf_counter() - started, summary(out),
                        json.loads((out / "summary.json").read_text()), snapshot(out)))
    return out, made[0], made[1]


def test_a_batch_ends_with_three_done_and_one_failed(runs):
    out, first, _ = runs
    result = first.result
    assert result.returncode == 1, result.stderr  # an asset failed
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: 1 of 4 assets failed (broken); {out / 'summary.csv'} says why"], result.stderr
    assert result.stdout.strip() == str(out / "summary.csv")
    rows = {row["asset"]: row for row in first.rows}
    assert [row["asset"] for row in first.rows] == ["pebble", "stone", "rock", "broken"]  # the order given
    assert {name: row["status"] for name, row in rows.items()} == {
        "pebble": "done", "stone": "done", "rock": "done", "broken": "failed"}
    # The failure: its one line of why, after a retry.
    assert rows["broken"]["attempts"] == "2"
    assert "has no triangles" in rows["broken"]["error"] and "\n" not in rows["broken"]["error"]
    assert "broken: failed (" in result.stderr and "running it once more" in result.stderr
    for name in ("pebble", "stone", "rock"):
        row = rows[name]
        assert row["attempts"] == "1" and row["error"] == ""
        assert 70 <= int(row["triangles"]) <= 80
        assert 10.0 < float(row["psnr_before"]) and 10.0 < float(row["psnr_baseline"]) and 10.0 < float(row["psnr_after"])
        assert float(row["seconds"]) > 0.0
        host, pid = row["worker"].rsplit(":", 1)
        assert host and pid.isdigit() and int(pid) != os.getpid()
        # The asset's outputs, whole: the LOD job's files, and the batch's record of them.
        names = {path.name for path in (out / name).iterdir()}
        assert LOD_OUTPUTS | {f"{name}.bam", f"{name}.egg", f"{name}.obj"} <= names
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["triangles"] == int(row["triangles"]) and metrics["steps"] == 20
        record = json.loads((out / name / "batch.json").read_text())
        assert record["source_sha256"] == metrics["source_sha256"]
        assert sorted(record["files"]) == sorted(names - {"batch.json"})
    # Nothing else: no folder for the failed asset, no staging left behind.
    assert {path.name for path in out.iterdir()} == {"pebble", "stone", "rock", "summary.csv", "summary.json"}
    document = first.document
    assert document["counts"] == {"done": 3, "skipped": 0, "failed": 1, "interrupted": 0, "pending": 0}
    assert document["options"] == {"triangles": [80], "texture_size": 32, "steps": 20, "res": 32, "seed": 0,
                                   "decimate_for_poses": False, "coverage_weight": 1.0}
    assert first.seconds <= 90.0  # 7 to 17 s on the 2-core CPU, shared or not


def test_a_second_run_does_no_work(runs):
    out, first, second = runs
    result = second.result
    assert result.returncode == 1, result.stderr  # the malformed file still fails
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "1 of 4 assets failed (broken)" in errors[0]
    assert "assets to optimise" not in result.stderr  # no Ray was started
    assert "not run again (--retry-failed)" in result.stderr
    rows = {row["asset"]: row for row in second.rows}
    assert {name: row["status"] for name, row in rows.items()} == {
        "pebble": "skipped", "stone": "skipped", "rock": "skipped", "broken": "failed"}
    assert {row["attempts"] for row in rows.values()} == {"0"}
    assert "has no triangles" in rows["broken"]["error"]
    # The skipped rows keep the figures of the run that made them.
    assert all(float(rows[name]["psnr_after"]) > 10.0 for name in ("pebble", "stone", "rock"))
    assert {name: time for name, time in second.files.items() if not name.startswith("summary.")} == \
        {name: time for name, time in first.files.items() if not name.startswith("summary.")}
    assert second.seconds < 20.0  # 0.2 s by hand: no Ray start-up (3-5 s on its own)


def test_the_skip_needs_the_same_bytes_options_and_files(runs):
    out = runs[0]
    record = json.loads((out / "pebble" / "batch.json").read_text())
    options, sha = record["options"], record["source_sha256"]
    assert completed_record(out / "pebble", sha, options) is not None
    assert completed_record(out / "pebble", "0" * 64, options) is None  # the source changed
    assert completed_record(out / "pebble", sha, {**options, "seed": 1}) is None  # other options
    assert completed_record(out / "broken", sha, options) is None  # never written


def test_a_removed_output_is_made_again(runs, tmp_path):
    out = runs[0]
    copy = tmp_path / "pebble"
    shutil.copytree(out / "pebble", copy)
    record = json.loads((copy / "batch.json").read_text())
    (copy / "report.png").unlink()
    assert completed_record(copy, record["source_sha256"], record["options"]) is None


def test_ctrl_c_keeps_what_was_there_and_writes_nothing_half(runs, library, tmp_path):
    """An earlier result of one asset (other options) stays as it was; the assets in flight
    write nothing; the workers' scratch folders go with them; exit 130."""
    out = tmp_path / "lods"
    out.mkdir()
    shutil.copytree(runs[0] / "pebble", out / "pebble")
    before = {name: (out / "pebble" / name).read_bytes() for name in os.listdir(out / "pebble")}
    command = [sys.executable, "-m", "optimizer", "batch", str(library / "pebble.obj"), str(library / "stone.obj"),
               "--triangles", "80", "--texture-size", "32", "--res", "32", "--steps", "1000000", "--workers", "2",
               "--out", str(out)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=_env(), preexec_fn=_default_sigint)
    try:
        for line in process.stderr:
            if "assets to optimise" in line:
                break
        time.sleep(4.0)  # the tasks started and are stepping
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("interrupted:")] == [
        "interrupted: 0 assets done, 0 skipped as already done, 2 not finished (nothing of theirs written); "
        "the same command again finishes them"]
    assert {path.name for path in out.iterdir()} == {"pebble", "summary.csv", "summary.json"}
    assert {name: (out / "pebble" / name).read_bytes() for name in os.listdir(out / "pebble")} == before
    assert {row["asset"]: row["status"] for row in summary(out)} == {"pebble": "interrupted", "stone": "interrupted"}
    root = scratch_root()
    leftovers = [folder.name for folder in root.iterdir() if not _running(folder.name)] if root.is_dir() else []
    assert leftovers == []


def _running(folder_name: str) -> bool:
    pid = int(folder_name.split("-", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_gpus_per_task_without_gpus_is_one_line(library, tmp_path):
    out = tmp_path / "lods"
    result = run_sge(["batch", str(library / "pebble.obj"), *SMALL_JOB, "--gpus-per-task", "1", "--workers", "1",
                      "--out", str(out)], tmp_path, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: --gpus-per-task 1: this machine (a local Ray) has 0 GPUs, so no task could start; "
                      "leave --gpus-per-task out to render on the CPUs, or join a cluster with GPU nodes (--address)"]
    assert not out.exists()  # refused before anything was written


def test_an_unreachable_cluster_is_one_line(library, tmp_path):
    result = run_sge(["batch", str(library / "pebble.obj"), *SMALL_JOB, "--address", "127.0.0.1:9",
                      "--out", str(tmp_path / "lods")], tmp_path, timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: cannot join the Ray cluster at 127.0.0.1:9"), \
        result.stderr


def test_names_are_the_files_and_same_names_are_numbered_by_path(tmp_path):
    positions, triangles, _, _ = bumpy_sphere(1)
    for folder in ("b", "a", "c"):
        (tmp_path / folder).mkdir()
    paths = [write_obj(tmp_path / "b" / "rock.obj", positions, triangles),
             write_obj(tmp_path / "a" / "rock.obj", positions, triangles),
             write_obj(tmp_path / "c" / "Rock.obj", positions, triangles),  # the same name on a case-blind disk
             write_obj(tmp_path / "rock-2.obj", positions, triangles),  # a file whose own name is a number's
             write_obj(tmp_path / "summary.csv.obj", positions, triangles)]
    names = {asset.source: asset.name for asset in plan_assets([str(path) for path in paths] + [str(paths[0])])}
    assert names == {str(paths[1]): "rock", str(paths[0]): "rock-3", str(paths[2]): "Rock-4",
                     str(paths[3]): "rock-2", str(paths[4]): "summary.csv-2"}
    # The same names whatever the order of the command line.
    again = {asset.source: asset.name for asset in plan_assets([str(path) for path in reversed(paths)])}
    assert again == names


def test_a_missing_source_is_its_row_not_the_batch(tmp_path):
    (assets,) = [plan_assets([str(tmp_path / "nowhere.obj")])]
    assert assets[0].name == "nowhere" and assets[0].path is None
    assert assets[0].error.startswith("cannot find")


def test_batch_takes_every_option_of_optimize_but_resume_checkpoints_and_subdivision():
    """The two commands share _lod_options: an option optimize gains, batch gains too, but
    for resuming and checkpoints (one asset's) and the subdivision fit (`--subdivision`,
    `--cage`: one asset's job, not run by batch)."""
    options = {command: {parameter.name for parameter in main.commands[command].params}
               for command in ("optimize", "batch")}
    single = {"resume", "checkpoint_every", "source", "subdivision", "cage"}
    assert options["optimize"] - single <= options["batch"]
    assert not {"subdivision", "cage"} & options["batch"]
    assert not {"resume", "checkpoint_every"} & options["batch"]
    assert {"workers", "address", "gpus_per_task"} <= options["batch"]
    help_text = CliRunner().invoke(main, ["batch", "--help"]).output
    assert "--workers" in help_text and "--gpus-per-task" in help_text


def test_a_batch_makes_lod_chains_too(library, tmp_path):
    """--triangles 80,40 over one asset: its folder holds the chain (NAME.lods.bam, lod0/,
    lod1/), and its summary row names both levels' triangle counts."""
    out = tmp_path / "chains"
    result = run_sge(["batch", str(library / "pebble.obj"), "--triangles", "80,40", "--texture-size", "32",
                      "--res", "32", "--steps", "5", "--workers", "1", "--out", str(out)], tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    folder = out / "pebble"
    assert {"pebble.lods.bam", "lod0", "lod1"} <= {path.name for path in folder.iterdir()}
    assert (folder / "lod1" / "pebble.bam").is_file()
    [row] = summary(out)
    assert row["status"] == "done" and row["triangles"] == "80,40", row
