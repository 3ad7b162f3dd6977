"""A corpus of malformed inputs for ``sge optimize``, written by the tests themselves: each
is answered through the real CLI (a subprocess) by one line starting with ``Error:`` that
names the problem and its fix, with a non-zero exit, or by a correct result (exit 0, every
output written) -- never a traceback, a signal or a hang; and a refused run leaves nothing
behind (no output directory, no ``.OUT.partial-*`` staging directory). docs/RELIABILITY.md
lists the line each case gets; with SGE_RELIABILITY_LOG=FILE the tests append them there."""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

from optimizer.cli import main
from procedural import bumpy_sphere, checker_texture, write_corrupt, write_glb, write_obj
from test_cli import run_sge

SMALL = ["--triangles", "40", "--texture-size", "32", "--res", "32", "--steps", "3"]
TIMEOUT = 60  # seconds: a case still running then is a hang
SPHERE = bumpy_sphere(2)  # 320 triangles
ONE_TRIANGLE = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def job(source, *extra, triangles="40"):
    """``sge optimize SOURCE`` with the small settings (``--out`` is added by the test
    unless ``extra`` has one)."""
    options = list(SMALL)
    options[1] = triangles
    return ["optimize", source, *options, *extra]


def with_option(option: str, value: str):
    """The small job on a good sphere with one option set to ``value``."""
    def make(folder: Path):
        options = dict(zip(SMALL[::2], SMALL[1::2]))
        options[option] = value
        return ["optimize", str(sphere_obj(folder)), *[x for pair in options.items() for x in pair]]
    return make


def sphere_obj(folder: Path, name: str = "sphere.obj", scale: float = 1.0, **texture) -> Path:
    positions, triangles, uvs, normals = SPHERE
    return write_obj(folder / name, positions * scale, triangles, uvs, normals, **texture)


def text_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- the broken files -------------------------------------------------------------------

def empty(name: str):
    def make(folder: Path):
        (folder / name).write_bytes(b"")
        return job(str(folder / name))
    return make


def random_bam(folder: Path):
    (folder / "random.bam").write_bytes(np.random.default_rng(0).bytes(4096))
    return job(str(folder / "random.bam"))


def obj_with_vertex(token: str):
    """Two triangles, one corner's y coordinate being ``token`` ("-inf", "1e999", ...)."""
    def make(folder: Path):
        return job(str(text_file(folder / "bad.obj", f"v 0 0 0\nv 1 0 0\nv 0 {token} 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")))
    return make


def gltf_with_buffer(folder: Path, keep: int | None) -> Path:
    """The sphere as .gltf whose buffer lives in sphere.bin: missing (``keep`` None) or
    cut to its first ``keep`` bytes."""
    positions, triangles, uvs, normals = SPHERE
    glb = write_glb(folder / "scratch.glb", positions, triangles, uvs, normals).read_bytes()
    (folder / "scratch.glb").unlink()
    json_length = struct.unpack_from("<I", glb, 12)[0]
    document = json.loads(glb[20:20 + json_length])
    binary_length = struct.unpack_from("<I", glb, 20 + json_length)[0]
    document["buffers"][0]["uri"] = "sphere.bin"
    if keep is not None:
        (folder / "sphere.bin").write_bytes(glb[28 + json_length:28 + json_length + binary_length][:keep])
    return text_file(folder / "sphere.gltf", json.dumps(document))


def png_with_text_chunk() -> bytes:
    """A PNG with a 20 kB tEXt chunk before its pixels (as editors write metadata)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 20000)
    stream = io.BytesIO()
    Image.fromarray(checker_texture(32)).save(stream, "PNG", pnginfo=info)
    return stream.getvalue()


def obj_with_png(data_of_png):
    """The sphere as .obj + .mtl whose texture tex.png holds ``data_of_png(good PNG)``."""
    def make(folder: Path):
        source = sphere_obj(folder, texture_png="tex.png", texture_rgb8=checker_texture(32))
        good = (folder / "tex.png").read_bytes()
        (folder / "tex.png").write_bytes(data_of_png(good))
        return job(str(source))
    return make


def cut_inside_text_chunk(_good: bytes) -> bytes:
    data = png_with_text_chunk()
    return data[:data.index(b"tEXt") + 5000]


def glb_with_cut_png(folder: Path):
    """A .glb whose embedded PNG is cut inside its tEXt chunk (the rest zero-filled, so
    the file's layout stays valid)."""
    positions, triangles, uvs, normals = SPHERE
    data = bytearray(write_glb(folder / "sphere.glb", positions, triangles, uvs, normals,
                               texture_rgb8=checker_texture(64)).read_bytes())
    start = data.index(b"\x89PNG")
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20:20 + json_length])
    length = document["bufferViews"][document["images"][0]["bufferView"]]["byteLength"]
    data[start:start + length] = (cut_inside_text_chunk(b"") + bytes(length))[:length]
    (folder / "sphere.glb").write_bytes(bytes(data))
    return job(str(folder / "sphere.glb"))


def non_utf8_source(folder: Path):
    name = b"mod\xff\xfeel.obj"
    sphere_obj(folder, os.fsdecode(name))
    return ["optimize", name, *SMALL]  # relative to the working directory, as bytes


def non_utf8_out(folder: Path):
    return job(str(sphere_obj(folder)), "--out", b"l\xffod")


def fifo(folder: Path):
    os.mkfifo(folder / "pipe.obj")  # reading it would wait forever for a writer
    return job(str(folder / "pipe.obj"))


def out_under_a_file(folder: Path):
    text_file(folder / "plain.txt", "not a directory\n")
    return job(str(sphere_obj(folder)), "--out", str(folder / "plain.txt" / "lod"))


def out_is_a_file(folder: Path):
    text_file(folder / "lod", "a file\n")
    return job(str(sphere_obj(folder)), "--out", str(folder / "lod"))


def garbage_pz(folder: Path):
    (folder / "model.egg.pz").write_bytes(np.random.default_rng(1).bytes(3000))
    return job(str(folder / "model.egg.pz"))


def symlink_loop(folder: Path):
    os.symlink(folder / "a.obj", folder / "b.obj")
    os.symlink(folder / "b.obj", folder / "a.obj")
    return job(str(folder / "a.obj"))


def obj_naming_a_missing_mtl(folder: Path):
    source = sphere_obj(folder)
    source.write_text("mtllib nowhere.mtl\nusemtl lost\n" + source.read_text())
    return job(str(source))


def sphere_with_degenerate_extras(folder: Path):
    """The sphere plus a triangle with its corners in a line and one with its corners equal."""
    source = sphere_obj(folder)
    n = len(SPHERE[0])
    extras = f"v 5 5 5\nv 6 6 6\nv 7 7 7\nf {n + 1} {n + 2} {n + 3}\nf {n + 1} {n + 1} {n + 1}\n"
    source.write_text(source.read_text() + extras)
    return job(str(source))


def resume_from(make_checkpoint):
    def make(folder: Path):
        return job(str(sphere_obj(folder)), "--resume", str(make_checkpoint(folder)))
    return make


def plain_directory(folder: Path) -> Path:
    (folder / "results").mkdir()
    (folder / "results" / "notes.txt").write_text("not a checkpoint\n")
    return folder / "results"


def damaged_checkpoint(folder: Path) -> Path:
    (folder / "lod.checkpoint").mkdir()
    (folder / "lod.checkpoint" / "state.npz").write_bytes(b"PK\x03\x04 cut short")
    return folder / "lod.checkpoint"


# --- what each case must get --------------------------------------------------------------

class Refused:
    """One ``Error:`` line containing ``phrase``, exit ``code``."""

    def __init__(self, phrase: str, code: int = 1):
        self.phrase, self.code = phrase, code


class Result:
    """Exit 0 and every output of a model named ``name``; ``scale``: the LOD's coordinates
    are of this magnitude (it is written in the source's units)."""

    def __init__(self, name: str, scale: float = 1.0):
        self.name, self.scale = name, scale


CASES = {
    # 1-3: cut files
    "truncated-obj": (lambda f: job(str(write_corrupt(f / "cut.obj", "truncated-obj"))), Refused("no triangles")),
    "truncated-egg": (lambda f: job(str(write_corrupt(f / "cut.egg", "garbage-egg"))),
                      Refused("syntax error at line 3")),
    "truncated-glb": (lambda f: job(str(write_corrupt(f / "cut.glb", "truncated-glb"))),
                      Refused("not a valid glb file")),
    # 4-5: empty and random files
    "empty-obj": (empty("empty.obj"), Refused("not a valid obj file")),
    "empty-egg": (empty("empty.egg"), Refused("no triangles")),
    "empty-glb": (empty("empty.glb"), Refused("not a valid glb file")),
    "empty-bam": (empty("empty.bam"), Refused("not a valid bam file")),
    "random-bytes-bam": (random_bam, Refused("not a valid bam file")),
    "garbage-egg-pz": (garbage_pz, Refused("no triangles")),
    # 6-9: bad numbers and indices
    "nan-coordinate": (lambda f: job(str(write_corrupt(f / "nan.obj", "nan-obj"))), Refused("non-finite")),
    "inf-coordinate": (obj_with_vertex("-inf"), Refused("non-finite")),
    "overflowing-coordinate": (obj_with_vertex("1e999"), Refused("non-finite")),
    "face-index-out-of-range": (lambda f: job(str(text_file(f / "oob.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 999\n"))),
                                Refused("vertex index out of range")),
    "negative-face-index-out-of-range": (
        lambda f: job(str(text_file(f / "oob.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 -999\n"))),
        Refused("vertex index out of range")),
    "zero-area-equal-corners": (
        lambda f: job(str(text_file(f / "flat.obj", "v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\nf 3 2 1\n")), triangles="1"),
        Refused("no triangle with an area")),
    "zero-area-collinear": (
        lambda f: job(str(text_file(f / "line.obj", "v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\n")),
                      triangles="1"),
        Refused("no triangle with an area")),
    "some-zero-area-faces": (sphere_with_degenerate_extras, Result("sphere")),
    # 10-12: what the model refers to
    "mtl-names-a-missing-texture": (lambda f: job(str(sphere_obj(f, texture_png="lost.png"))),
                                    Refused("'lost.png', which cannot be found or read")),
    "obj-names-a-missing-mtl": (obj_naming_a_missing_mtl, Result("sphere")),
    "gltf-missing-bin": (lambda f: job(str(gltf_with_buffer(f, None))), Refused("'sphere.bin', which is missing")),
    "gltf-short-bin": (lambda f: job(str(gltf_with_buffer(f, 100))), Refused("holds 100 of its")),
    "png-truncated": (obj_with_png(lambda good: good[:len(good) // 2]), Refused("tex.png', which is damaged")),
    "png-cut-inside-a-text-chunk": (obj_with_png(cut_inside_text_chunk), Refused("tex.png', which is damaged")),
    "png-signature-then-garbage": (obj_with_png(lambda good: good[:8] + b"garbage" * 10),
                                   Refused("tex.png', which is damaged")),
    "png-that-is-a-git-lfs-pointer": (obj_with_png(lambda good: b"version https://git-lfs.github.com/spec/v1\n"),
                                      Refused("tex.png', which cannot be found or read")),
    "glb-embedded-png-cut": (glb_with_cut_png, Refused("which is damaged")),
    # 13: absurd sizes
    "texture-size-100000": (with_option("--texture-size", "100000"), Refused("'--texture-size'", 2)),
    "texture-size-0": (with_option("--texture-size", "0"), Refused("'--texture-size'", 2)),
    "triangles-0": (with_option("--triangles", "0"), Refused("'--triangles'", 2)),
    "triangles-minus-5": (with_option("--triangles", "-5"), Refused("'--triangles'", 2)),
    "triangles-99999999999": (with_option("--triangles", "99999999999"), Result("sphere")),
    "res-0": (with_option("--res", "0"), Refused("'--res'", 2)),
    "res-100000": (with_option("--res", "100000"), Refused("'--res'", 2)),
    "steps-minus-1": (with_option("--steps", "-1"), Refused("'--steps'", 2)),
    "seed-minus-1": (with_option("--seed", "-1"), Refused("'--seed'", 2)),
    # 14-19: paths
    "non-utf8-source-name": (non_utf8_source, Refused("is not valid UTF-8")),
    "non-utf8-out-name": (non_utf8_out, Refused("is not valid UTF-8", 2)),
    "source-is-a-directory": (lambda f: job(str(f)), Refused("is a directory")),
    "source-does-not-exist": (lambda f: job(str(f / "nothing.obj")), Refused("cannot find")),
    "source-is-a-fifo": (fifo, Refused("is not a regular file")),
    "source-is-a-symlink-loop": (symlink_loop, Refused("cannot find")),
    "txt-extension": (lambda f: job(str(text_file(f / "notes.txt", "v 0 0 0\n"))), Refused("not a model format")),
    "fbx-named-garbage": (lambda f: job(str(text_file(f / "model.fbx", "Kaydara FBX Binary garbage"))),
                          Refused("not a model format")),
    "out-under-a-regular-file": (out_under_a_file, Refused("cannot write the output directory")),
    "out-is-a-regular-file": (out_is_a_file, Refused("is a file", 2)),
    "out-is-empty": (lambda f: job(str(sphere_obj(f)), "--out", ""), Refused("is the current directory", 2)),
    "out-is-the-working-directory": (lambda f: job(str(sphere_obj(f)), "--out", "."),
                                     Refused("is the current directory", 2)),
    # 20-22: odd but legal geometry
    "points-only": (lambda f: job(str(write_corrupt(f / "points.obj", "points-only-obj"))), Refused("no triangles")),
    "lines-only-egg": (lambda f: job(str(write_corrupt(f / "lines.egg", "lines-only-egg"))), Refused("no triangles")),
    "lines-only-obj": (lambda f: job(str(text_file(f / "lines.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nl 1 2 3\n"))),
                       Refused("no triangles")),
    "coordinates-of-1e30": (lambda f: job(str(sphere_obj(f, "huge.obj", scale=1e30))), Result("huge", 1e30)),
    "coordinates-of-1e-30": (lambda f: job(str(sphere_obj(f, "tiny.obj", scale=1e-30))), Result("tiny", 1e-30)),
    "single-triangle": (lambda f: job(str(text_file(f / "tri.obj", ONE_TRIANGLE)), triangles="1"), Result("tri")),
    "single-triangle-asking-for-40": (lambda f: job(str(text_file(f / "tri.obj", ONE_TRIANGLE))), Result("tri")),
}

RESUME_CASES = {
    "resume-from-a-plain-directory": (resume_from(plain_directory), Refused("is not a checkpoint")),
    "resume-from-a-damaged-checkpoint": (resume_from(damaged_checkpoint), Refused("is damaged")),
}


def _has_resume() -> bool:
    return "--resume" in CliRunner().invoke(main, ["optimize", "--help"]).output


def everything_under(folder: Path) -> set[str]:
    return {os.path.relpath(os.path.join(root, name), folder)
            for root, directories, files in os.walk(folder) for name in directories + files}


def record(case: str, line: str) -> None:
    log = os.environ.get("SGE_RELIABILITY_LOG")
    if log:
        with open(log, "a", encoding="utf-8", errors="backslashreplace") as stream:
            stream.write(f"{case}\t{line}\n")


def run_case(case: str, make, expected, tmp_path: Path) -> None:
    args = make(tmp_path)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "lod")]
    before = everything_under(tmp_path)
    try:
        result = run_sge(args, tmp_path, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: no answer within {TIMEOUT} s (a hang)")
    assert result.returncode >= 0, f"{case}: killed by signal {-result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    created = everything_under(tmp_path) - before
    if isinstance(expected, Refused):
        assert result.returncode == expected.code, (result.returncode, result.stderr)
        assert len(errors) == 1 and expected.phrase in errors[0], result.stderr
        assert created == set(), f"left behind: {sorted(created)}"
        record(case, errors[0])
        return
    assert result.returncode == 0 and not errors, result.stderr
    out = tmp_path / "lod"
    assert result.stdout.strip() == str(out / "report.png")
    names = {f"{expected.name}.{extension}" for extension in ("bam", "egg", "obj", "mtl", "glb")} | \
        {f"{expected.name}_albedo.png", f"{expected.name}_normal.png", "report.png", "metrics.json", ".sge-output"}
    assert {p.name for p in out.iterdir()} == names
    assert created == {"lod"} | {f"lod/{name}" for name in names}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and all(math.isfinite(metrics[key]) for key in ("psnr_after", "iou_after"))
    vertices = np.array([line.split()[1:4] for line in (out / f"{expected.name}.obj").read_text().splitlines()
                         if line.startswith("v ")], np.float64)
    assert np.isfinite(vertices).all()
    assert 0.1 * expected.scale < np.abs(vertices).max() < 10 * expected.scale  # in the source's units
    record(case, "correct result")


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_is_one_clear_line_or_a_correct_result(case, tmp_path):
    make, expected = CASES[case]
    run_case(case, make, expected, tmp_path)


@pytest.mark.skipif(not _has_resume(), reason="sge optimize has no --resume yet")
@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_from_something_else_is_one_clear_line(case, tmp_path):
    make, expected = RESUME_CASES[case]
    run_case(case, make, expected, tmp_path)


def test_out_holding_the_source_is_refused(tmp_path):
    (tmp_path / "models").mkdir()
    source = sphere_obj(tmp_path / "models")
    original = source.read_bytes()
    result = run_sge(job(str(source), "--out", str(tmp_path / "models")), tmp_path, timeout=TIMEOUT)
    assert source.is_file() and source.read_bytes() == original, "the source was replaced by the LOD"
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "holds the source model" in result.stderr


def test_optimize_without_compute_shaders_is_one_line_and_leaves_nothing(context, tmp_path):
    """As test_cli's bench cube case, for the LOD job: refused before anything is written."""
    if "llvmpipe" not in context.renderer:
        pytest.skip(f"needs Mesa llvmpipe to hide compute shaders, have {context.renderer}")
    args = job(str(sphere_obj(tmp_path)), "--out", str(tmp_path / "lod"))
    before = everything_under(tmp_path)
    result = run_sge(args, tmp_path, {"MESA_GL_VERSION_OVERRIDE": "3.3",
                                      "MESA_EXTENSION_OVERRIDE": "-GL_ARB_compute_shader"}, timeout=TIMEOUT)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(errors) == 1 and "lacks compute shaders" in errors[0], result.stderr
    assert everything_under(tmp_path) == before
    record("no-compute-shaders", errors[0])


def test_png_names_are_found_around_each_png_as_the_pattern_finds_them_everywhere():
    """_check_pngs looks for _PNG_NAME's matches only between the control bytes around each
    ".png" (over a multi-megabyte .bam the pattern over everything took most of a
    second): the same matches, on names quoted, bare, doubled, next to control bytes."""
    from optimizer.assets import _PNG_NAME, _png_names
    crafted = [b'<Texture> t { "maps/a b.png" }\n<Texture> u { maps/c.PNG }', b'"a.png.png"\x01x.png\x00.png',
               b'name=tex.png;other.png', b'\x00\x01"quoted.png', b'.png', b'', b'a.pngx b.png\tc.png']
    rng = np.random.default_rng(7)
    alphabet = np.frombuffer(b'ab."\\/ \n\x01\x1fPNGpng.png.PNG;=()x\x00', np.uint8)
    blobs = crafted + [bytes(rng.choice(alphabet, size=4000)) for _ in range(40)]
    found = 0
    for blob in blobs:
        expected = _PNG_NAME.findall(blob)
        assert _png_names(blob) == expected, blob[:80]
        found += len(expected)
    assert found > 15
