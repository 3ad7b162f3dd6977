"""Real files as users and scripts make them (issue 14): a .bam written from a bare
GeomNode, a texture whose stored path is gone but that sits beside the model, animation
files, an --out folder of the user's own, a job too big for the machine's memory, a
screenshot of an unknown type, the progress of a long run, and the names of the files
the in-game component writes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from panda3d.core import NodePath, loadPrcFileData

from optimizer.lod import job
from optimizer.assets import load_model, srgb8_to_linear
from optimizer.errors import SgeError
from optimizer.lod.job import LodSession, Progress, check_replaceable, run_lod_job
from optimizer.lod.scenario import LodSettings
from optimizer.source import load_source, source_from_model
from procedural import bumpy_sphere, checker_texture, write_obj
from test_cli import run_sge
from test_lod import assert_one_clear_error

TINY = ["--triangles", "40", "--texture-size", "32", "--res", "32", "--steps", "3"]


@pytest.fixture(scope="module")
def sphere(tmp_path_factory):
    """A small textured sphere: (its .obj, the checker image it names, as RGB8)."""
    folder = tmp_path_factory.mktemp("real-files")
    positions, triangles, uvs, normals = bumpy_sphere(2, 0.2)
    texture = checker_texture(32)
    return write_obj(folder / "sphere.obj", positions, triangles, uvs, normals, texture_png="skin.png",
                     texture_rgb8=texture), texture


def test_a_bam_written_from_a_bare_geom_node_loads_every_triangle(tmp_path):
    panda = load_model("models/panda")
    geom_node = panda.find("**/+GeomNode").node()
    NodePath(geom_node).writeBamFile(str(tmp_path / "bare.bam"))
    expected = sum(geom_node.getGeom(g).getVertexData().getNumRows() > 0 and
                   sum(geom_node.getGeom(g).getPrimitive(p).decompose().getNumPrimitives()
                       for p in range(geom_node.getGeom(g).getNumPrimitives()))
                   for g in range(geom_node.getNumGeoms()))
    mesh = load_source(tmp_path / "bare.bam")
    assert len(mesh.triangles) == expected > 0


@pytest.mark.parametrize("where", ["beside", "textures"])
def test_a_texture_whose_path_is_gone_is_found_beside_the_model(sphere, tmp_path, where):
    """The .bam names the texture at an absolute path of the machine it was made on; the
    image sits beside the .bam (or in textures/ there): it is used, and a line says so."""
    source, texture = sphere
    made_on = tmp_path / "old-machine"
    made_on.mkdir()
    for name in ("sphere.obj", "sphere.mtl", "skin.png"):
        shutil.copy(source.parent / name, made_on / name)
    here = tmp_path / "project"
    (here / "textures").mkdir(parents=True)
    loadPrcFileData("sge-test", "bam-texture-mode fullpath")  # store the absolute path
    try:
        load_model(made_on / "sphere.obj").writeBamFile(str(here / "sphere.bam"))
    finally:
        loadPrcFileData("sge-test", "bam-texture-mode relative")
    shutil.rmtree(made_on)
    shutil.copy(source.parent / "skin.png", here / ("skin.png" if where == "beside" else "textures/skin.png"))

    mesh = load_source(here / "sphere.bam")
    [note] = mesh.notes
    assert "'sphere.bam' names the texture" in note and "old-machine" in note
    assert f"using '{(here / 'skin.png' if where == 'beside' else here / 'textures' / 'skin.png')}'" in note
    [material] = [m for m in mesh.materials if m.texture is not None]
    np.testing.assert_allclose(material.texture[::-1], srgb8_to_linear(texture), atol=1e-6)


def test_a_texture_found_nowhere_is_still_one_clear_line(sphere, tmp_path):
    source, _ = sphere
    shutil.copy(source, tmp_path / "sphere.obj")
    shutil.copy(source.with_suffix(".mtl"), tmp_path / "sphere.mtl")  # names skin.png, which is not there
    result = run_sge(["optimize", str(tmp_path / "sphere.obj"), *TINY, "--out", str(tmp_path / "lod")], tmp_path)
    assert_one_clear_error(result, "uses the texture 'skin.png', which cannot be found or read")


@pytest.mark.parametrize("name", ["models/panda-walk4", "models/panda-walk"])
def test_an_animation_file_is_named_as_one(name):
    with pytest.raises(SgeError, match=r"holds an animation, not geometry; give the model it animates instead"):
        load_source(name)


def test_an_out_folder_of_the_users_own_is_never_replaced(sphere, tmp_path):
    source, _ = sphere
    out = tmp_path / "mygame"
    out.mkdir()
    (out / "level1.txt").write_text("the user's own work")
    result = run_sge(["optimize", str(source), *TINY, "--out", str(out)], tmp_path)
    assert_one_clear_error(result, f"--out {out} exists and was not written by sge (it holds level1.txt)")
    assert "--force" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["level1.txt"]
    assert not any(p.name.startswith(".mygame") for p in tmp_path.iterdir())  # no staging left

    # A folder sge wrote is replaced by the next run without asking; --force replaces the user's.
    result = run_sge(["optimize", str(source), *TINY, "--out", str(out), "--force"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (out / "level1.txt").exists() and (out / "metrics.json").is_file()
    (out / "metrics.json").unlink()
    check_replaceable(out)  # its marker says sge wrote it
    result = run_sge(["optimize", str(source), *TINY, "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_job_beyond_the_available_memory_is_refused_before_it_starts(sphere, tmp_path, monkeypatch, context):
    source, _ = sphere
    settings = LodSettings(triangles=40, texture_size=4096, resolution=32, steps=3)
    assert job.job_memory(settings) > 7 * 2**30  # 4096^2 maps: 7.3 GB measured
    monkeypatch.setattr(job, "available_memory", lambda: 4 * 2**30)
    with pytest.raises(SgeError, match=r"this job needs about 7\.\d GB of memory \(--texture-size 4096, --res 32\) "
                                       r"and 4\.0 GB is available; lower --texture-size or --res"):
        run_lod_job(source, tmp_path / "lod", settings, context=context)
    assert list(tmp_path.iterdir()) == []


def test_texture_size_8192_is_refused_where_it_does_not_fit(sphere, tmp_path):
    """The machine's own MemAvailable: 8192^2 maps need about 30 GB."""
    available = job.available_memory()
    if available is None or available > job.job_memory(LodSettings(texture_size=8192)):
        pytest.skip("this machine has the memory for --texture-size 8192")
    source, _ = sphere
    result = run_sge(["optimize", str(source), *TINY, "--texture-size", "8192", "--out", str(tmp_path / "lod")],
                     tmp_path, timeout=60)
    assert_one_clear_error(result, "this job needs about")
    assert not (tmp_path / "lod").exists()


def test_a_screenshot_of_an_unknown_type_is_refused_and_leaves_no_file(sphere, tmp_path):
    source, _ = sphere
    shot = tmp_path / "x.bmpp"
    result = run_sge(["view", str(source), "--frames", "1", "--screenshot", str(shot)], tmp_path)
    assert_one_clear_error(result, "'.bmpp' is not an image type Panda3D writes; name it .png or .jpg")
    assert list(tmp_path.iterdir()) == []


class _Recorder(Progress):
    def __init__(self):
        self.reports = []

    def step(self, step, steps, loss, steps_per_second):
        self.reports.append((step, steps_per_second))


def test_progress_is_reported_evenly_with_its_rate(sphere, context):
    """700 steps (the demo's 1,400 halved): a report every 25 steps, each with a rate."""
    source, _ = sphere
    progress = _Recorder()
    session = LodSession(load_source(source), LodSettings(triangles=40, texture_size=32, resolution=32, steps=700),
                         context, progress)
    try:
        session.run(700)
    finally:
        session.release()
    steps = [step for step, _ in progress.reports]
    assert steps == list(range(25, 701, 25))
    assert all(rate > 0 for _, rate in progress.reports)


def test_the_component_names_files_after_the_model_not_its_file(sphere):
    model = load_model("models/panda")
    assert model.getName().startswith("panda.egg")
    mesh = source_from_model(model, name=model.getName())
    assert mesh.name == "panda"
    assert source_from_model(model, name="my.tree").name == "my.tree"  # not a model file's extension
