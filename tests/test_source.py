"""The source asset: Panda3D models of every supported format flattened to one mesh with
its materials, bad input refused in one line, and the reference drawn per material."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from panda3d.core import Filename, NodePath, ShaderAttrib
from PIL import Image

import gltf
from optimizer.assets import srgb8_to_linear
from optimizer.errors import SgeError
from optimizer.surface.mesh import geom_node, reference_node
from optimizer.source import load_source, reference_model
from optimizer.surface.texture import float_texture
from procedural import bumpy_sphere, checker_texture, vertex_normals, write_corrupt, write_glb, write_obj

PANDA_TEXTURES = {"panda_torso", "panda_head", "panda_viser", "panda_hat"}


@pytest.fixture(scope="module")
def panda():
    return load_source("models/panda")


def corner_table(positions, triangles, uvs) -> np.ndarray:
    """Every triangle corner as (x, y, z, u, v), rounded and sorted: a mesh up to vertex
    order and welding."""
    corners = np.concatenate([positions[triangles], uvs[triangles]], axis=2).reshape(-1, 5)
    corners = np.round(corners, 5)
    return corners[np.lexsort(corners.T[::-1])]


def face_normals(mesh) -> np.ndarray:
    corners = mesh.positions[mesh.triangles]
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def test_panda_flattens_to_its_6672_triangles_and_8_materials(panda):
    assert panda.name == "panda"
    assert panda.triangles.shape == (6672, 3) and panda.triangles.dtype == np.int32
    assert panda.material_index.shape == (6672,) and panda.material_index.dtype == np.int32
    textured = {m.name for m in panda.materials if m.texture is not None}
    assert textured == PANDA_TEXTURES
    flat = [m for m in panda.materials if m.texture is None]
    assert len(flat) == 4  # black, purple and the two translucent markers (drawn opaque)
    assert np.bincount(panda.material_index, minlength=len(panda.materials)).min() > 0
    assert np.isfinite(panda.positions).all()
    np.testing.assert_allclose(np.linalg.norm(panda.normals, axis=1), 1.0, atol=1e-5)
    used = panda.positions[np.unique(panda.triangles)]
    assert used[:, 2].min() == pytest.approx(0.0, abs=0.1) and used[:, 2].max() == pytest.approx(12.2, abs=0.05)
    assert used[:, 0].min() == pytest.approx(-8.0, abs=0.1) and used[:, 0].max() == pytest.approx(8.0, abs=0.1)
    center, radius = panda.bounds()
    assert 8.0 < radius < 10.0 and center[2] == pytest.approx(6.1, abs=0.1)
    for index, material in enumerate(panda.materials):
        if material.texture is not None:
            uvs = panda.uvs[panda.triangles[panda.material_index == index]]
            assert uvs.min() > -0.01 and uvs.max() < 1.01 and np.ptp(uvs) > 0.3


def test_panda_textures_are_linear_with_row_0_at_v_0(panda):
    """Each texture equals the decoded image file (read by Pillow, an independent
    decoder), bottom row first, and is darker than its raw sRGB/255."""
    maps = Path(panda.path).parent / "maps"
    for material in panda.materials:
        if material.texture is None:
            continue
        raw = np.asarray(Image.open(maps / f"{material.name}.rgb").convert("RGB"))
        np.testing.assert_allclose(material.texture, srgb8_to_linear(raw[::-1]), atol=1e-6)
        assert material.texture.dtype == np.float32
        mid = (raw[::-1] > 12) & (raw[::-1] < 243)  # where sRGB decoding is at least 0.02 darker
        assert mid.sum() > 1000 and (material.texture[mid] < raw[::-1][mid] / 255.0 - 0.02).all()


def test_panda_path_is_the_file_that_was_read_and_hashed(panda):
    assert panda.path.name == "panda.egg.pz" and panda.path.is_file()
    assert panda.file_hash() == hashlib.sha256(panda.path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["obj", "glb"])
def test_written_sphere_loads_back_with_its_texture(tmp_path, monkeypatch, fmt):
    positions, triangles, uvs, normals = bumpy_sphere()
    checker = checker_texture(64)
    calls = []
    read_gltf = gltf.load_model
    monkeypatch.setattr(gltf, "load_model", lambda *args: calls.append(args) or read_gltf(*args))
    if fmt == "obj":
        path = write_obj(tmp_path / "sphere.obj", positions, triangles, uvs, normals, "checker.png", checker)
    else:
        path = write_glb(tmp_path / "sphere.glb", positions, triangles, uvs, normals, checker)
    mesh = load_source(str(path))
    assert len(calls) == (1 if fmt == "glb" else 0)  # .glb is read by panda3d-gltf, not assimp
    assert mesh.name == "sphere" and mesh.path == path.resolve()
    assert mesh.file_hash() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert mesh.triangles.shape == (1280, 3) and len(mesh.materials) == 1
    np.testing.assert_allclose(corner_table(mesh.positions, mesh.triangles, mesh.uvs),  # z-up, v up: as written
                               corner_table(positions, triangles, uvs), atol=2e-5)
    outward = np.einsum("ij,ij->i", face_normals(mesh), mesh.positions[mesh.triangles].mean(axis=1))
    assert (outward > 0).all()  # winding kept
    assert (np.einsum("ij,ij->i", mesh.normals, mesh.positions) > 0).all()
    texture = mesh.materials[0].texture
    np.testing.assert_allclose(texture, srgb8_to_linear(checker[::-1]), atol=1e-6)
    np.testing.assert_allclose(texture[0, 0], srgb8_to_linear(checker[-1, 0]), atol=1e-6)  # v = 0: image bottom
    np.testing.assert_allclose(mesh.materials[0].base_color, 1.0)


def test_model_without_normals_gets_area_weighted_ones(tmp_path):
    positions, triangles, _, _ = bumpy_sphere(2)
    mesh = load_source(write_obj(tmp_path / "bare.obj", positions, triangles))
    assert mesh.materials[0].texture is None and not mesh.uvs.any()
    order = np.lexsort(np.round(mesh.positions, 5).T[::-1])
    expected = vertex_normals(positions, triangles)[np.lexsort(np.round(positions, 5).T[::-1])]
    np.testing.assert_allclose(mesh.normals[order], expected, atol=1e-4)


def test_egg_transforms_mirroring_and_vertex_colours(tmp_path):
    """A quad with per-vertex colours in a mirrored, lifted group. Egg vertices are
    written in world coordinates; the loader moves them into the group's frame under a
    node transform, which flattening must undo, index order and normals included."""
    (tmp_path / "quad.egg").write_text("""<CoordinateSystem> { Z-up }
<Group> root { <Group> mirrored {
  <Transform> { <Scale> { -1 1 1 } <Translate> { 0 0 5 } }
  <VertexPool> pool {
    <Vertex> 0 { 0 0 0 <Normal> { 0 0 1 } <RGBA> { 1 0 0 1 } }
    <Vertex> 1 { 1 0 0 <Normal> { 0 0 1 } <RGBA> { 0 1 0 1 } }
    <Vertex> 2 { 1 1 0 <Normal> { 0 0 1 } <RGBA> { 0 0 1 1 } }
    <Vertex> 3 { 0 1 0 <Normal> { 0 0 1 } <RGBA> { 0.5 0.5 0.5 1 } }
  }
  <Polygon> { <VertexRef> { 0 1 2 3 <Ref> { pool } } }
} }
""")
    mesh = load_source(tmp_path / "quad.egg")
    assert mesh.triangles.shape == (2, 3)
    expected = {(0, 0, 0): (1, 0, 0), (1, 0, 0): (0, 1, 0), (1, 1, 0): (0, 0, 1), (0, 1, 0): (0.5, 0.5, 0.5)}
    assert {tuple(np.round(p, 5)) for p in mesh.positions[mesh.triangles].reshape(-1, 3)} == set(expected)
    for position, color in zip(mesh.positions, mesh.colors):
        srgb = expected[tuple(np.round(position, 5))]
        np.testing.assert_allclose(color, srgb8_to_linear(np.array(srgb) * 255), atol=3e-3)
    np.testing.assert_allclose(mesh.normals, [[0, 0, 1]] * len(mesh.normals), atol=1e-6)
    assert (face_normals(mesh)[:, 2] > 0).all()  # counter-clockwise seen along the normals, as written
    np.testing.assert_allclose(mesh.materials[0].base_color, 1.0)


def test_bam_with_a_flat_colour_on_a_transformed_parent(tmp_path):
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    root = NodePath("root")
    holder = root.attachNewNode("holder")
    holder.setPos(1, 2, 3)
    holder.setScale(2)
    holder.setColor(0.5, 0.25, 1.0, 1.0)
    geom_node("tri", positions, [[0, 1, 2]], colors=[[0.1, 0.9, 0.1]] * 3).reparentTo(holder)
    path = tmp_path / "tri.bam"
    assert root.writeBamFile(Filename.fromOsSpecific(str(path)))
    mesh = load_source(path)
    np.testing.assert_allclose(mesh.positions, positions * 2 + [1, 2, 3], atol=1e-6)
    assert len(mesh.materials) == 1 and mesh.materials[0].texture is None
    np.testing.assert_allclose(mesh.materials[0].base_color, srgb8_to_linear(np.array([0.5, 0.25, 1.0]) * 255),
                               atol=1e-6)
    np.testing.assert_allclose(mesh.colors, 1.0)  # a flat colour replaces the vertex colours


def test_a_disk_path_wins_over_the_model_path(tmp_path, monkeypatch):
    positions, triangles, _, _ = bumpy_sphere(0)
    (tmp_path / "models").mkdir()
    write_obj(tmp_path / "models" / "panda.obj", positions, triangles)
    monkeypatch.chdir(tmp_path)
    assert load_source("models/panda.obj").triangles.shape == (20, 3)


def test_an_edited_file_is_read_again(tmp_path):
    """No cache stands between the artist's save and the next load: model nor texture."""
    positions, triangles, uvs, normals = bumpy_sphere(1)
    path = write_obj(tmp_path / "edit.obj", positions, triangles, uvs, normals, "edit.png", checker_texture(16))
    first = load_source(path)
    positions, triangles, uvs, normals = bumpy_sphere(2)
    write_obj(path, positions, triangles, uvs, normals, "edit.png", 255 - checker_texture(16))
    second = load_source(path)
    assert (len(first.triangles), len(second.triangles)) == (80, 320)
    np.testing.assert_allclose(second.materials[0].texture, srgb8_to_linear(255 - checker_texture(16)[::-1]),
                               atol=1e-6)


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _missing_texture(tmp_path) -> Path:
    positions, triangles, uvs, normals = bumpy_sphere(1)
    return write_obj(tmp_path / "untextured.obj", positions, triangles, uvs, normals, "lost.png")


BAD_INPUTS = {
    "missing file": (lambda tmp: tmp / "nowhere.obj", "cannot find"),
    "directory": (lambda tmp: tmp, "is a directory"),
    "unsupported extension": (lambda tmp: write_text(tmp / "notes.txt", "v 0 0 0"), ".egg, .bam, .obj"),
    "truncated obj": (lambda tmp: write_corrupt(tmp / "cut.obj", "truncated-obj"), "no triangles"),
    "truncated glb": (lambda tmp: write_corrupt(tmp / "cut.glb", "truncated-glb"), "not a valid glb file"),
    "garbage egg": (lambda tmp: write_corrupt(tmp / "junk.egg", "garbage-egg"), "syntax error at line"),
    "points only": (lambda tmp: write_corrupt(tmp / "points.obj", "points-only-obj"), "no triangles"),
    "lines only": (lambda tmp: write_corrupt(tmp / "lines.egg", "lines-only-egg"), "no triangles"),
    "nan coordinates": (lambda tmp: write_corrupt(tmp / "nan.obj", "nan-obj"), "non-finite"),
    "missing texture": (_missing_texture, "lost.png"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_in_one_line_naming_the_file(tmp_path, case):
    make, expected = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(SgeError) as raised:
        load_source(str(path))
    message = str(raised.value)
    assert "\n" not in message and path.name in message and expected in message, message


def test_reference_model_has_one_child_per_material_with_its_albedo_on_top(panda):
    reference = reference_model(panda)
    children = reference.getChildren()
    assert [child.getName() for child in children] == [m.name for m in panda.materials]
    white = float_texture("white", np.ones((1, 1, 3), np.float32))
    reference_node(reference, albedo=white, lit=True)  # as the optimizer does: white at priority 10
    triangles = 0
    for index, (child, material) in enumerate(zip(children, panda.materials)):
        albedo = child.getShaderInput("albedo")
        assert albedo.getPriority() == 20
        size = (1, 1) if material.texture is None else material.texture.shape[:2]
        assert (albedo.getTexture().getYSize(), albedo.getTexture().getXSize()) == size
        drawn = child.getNetState().getAttrib(ShaderAttrib)
        assert drawn.getShader() is not None and drawn.getShaderInput("albedo").getTexture() == albedo.getTexture()
        geom = child.node().getGeom(0)
        triangles += geom.getPrimitive(0).getNumPrimitives()
        assert geom.getVertexData().getNumRows() == len(np.unique(panda.triangles[panda.material_index == index]))
    assert triangles == 6672
