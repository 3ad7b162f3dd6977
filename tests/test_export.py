"""The LOD exporter: every file it writes loads back (Panda3D .bam/.egg natively, .obj
through assimp) with the mesh, both textures and the normal stage, also after the
directory has been moved, and the .bam copied alone; PNGs named after the asset hold sRGB
albedo and raw normals, top row v = 1; the .mtl has no specular and a normal (not
height) map."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from panda3d.core import (Filename, GeomVertexReader, Loader, LoaderOptions, NodePath, Texture, TextureAttrib,
                          TextureStage)
from PIL import Image

from optimizer.errors import SgeError
from optimizer.lod.export import write_lod
from optimizer.images import linear_to_srgb8

# (normal, u axis, v axis) of each cube face, u x v = normal: counter-clockwise from outside.
FACES = [((1, 0, 0), (0, 1, 0), (0, 0, 1)), ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
         ((0, 1, 0), (-1, 0, 0), (0, 0, 1)), ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
         ((0, 0, 1), (1, 0, 0), (0, 1, 0)), ((0, 0, -1), (-1, 0, 0), (0, 1, 0))]


def cube_lod(cells: int = 2, seed: int = 0) -> dict:
    """A cube whose faces are ``cells`` x ``cells`` quad grids, each face in its own cell
    of a 3 x 2 UV atlas; tangent = +u and binormal = -v of the face (Panda3D's
    convention: optimizer.lod.geometry.tangent_frames). Positions are scaled
    and shifted so they are not short decimals."""
    positions, normals, tangents, binormals, uvs, triangles = [], [], [], [], [], []
    steps = np.linspace(-1.0, 1.0, cells + 1)
    for face, (normal, u_axis, v_axis) in enumerate(FACES):
        normal, u_axis, v_axis = (np.array(a, np.float64) for a in (normal, u_axis, v_axis))
        first = len(positions)
        for v in steps:
            for u in steps:
                positions.append(0.731 * (normal + u * u_axis + v * v_axis) + (0.1, -0.2, 0.3))
                normals.append(normal)
                tangents.append(u_axis)
                binormals.append(-v_axis)
                uvs.append(((face % 3 + (u + 1) / 2) / 3, (face // 3 + (v + 1) / 2) / 2))
        for row in range(cells):
            for column in range(cells):
                corner = first + row * (cells + 1) + column
                above = corner + cells + 1
                triangles += [(corner, corner + 1, above + 1), (corner, above + 1, above)]
    rng = np.random.default_rng(seed)
    normal_map = np.clip(0.5 + 0.5 * np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, (24, 40, 3)), 0, 1)
    return {"positions": np.array(positions), "triangles": np.array(triangles), "normals": np.array(normals),
            "tangents": np.array(tangents), "binormals": np.array(binormals), "uvs": np.array(uvs),
            "albedo": rng.random((32, 48, 3), np.float32), "normal_map": normal_map.astype(np.float32)}


@pytest.fixture
def lod() -> dict:
    return cube_lod()


def load(path) -> NodePath:
    options = LoaderOptions(LoaderOptions.LF_report_errors | LoaderOptions.LF_no_cache)
    node = Loader.getGlobalPtr().loadSync(Filename.fromOsSpecific(str(path)), options)
    assert node is not None, f"Panda3D could not load {path}"
    return NodePath(node)


def geoms(model: NodePath):
    """(geom, render state) of every Geom under ``model``; the state as drawn (the nodes'
    above it composed with the geom's own: assimp puts materials on the GeomNode)."""
    for geom_path in model.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            yield node.getGeom(g), geom_path.getNetState().compose(node.getGeomState(g))


def triangles(geom) -> np.ndarray:
    """(T, 3) vertex rows of every triangle of ``geom``."""
    return np.concatenate([np.reshape(geom.getPrimitive(p).decompose().getVertexList(), (-1, 3))
                           for p in range(geom.getNumPrimitives())])


def triangle_count(model: NodePath) -> int:
    return sum(len(triangles(geom)) for geom, _ in geoms(model))


def column(geom, name: str, width: int) -> np.ndarray:
    data = geom.getVertexData()
    reader = GeomVertexReader(data, name)
    read = reader.getData3 if width == 3 else reader.getData2
    return np.array([read() for _ in range(data.getNumRows())], np.float32)


def stages(model: NodePath) -> dict:
    """TextureStage mode -> (the stage, the Texture on it), over every geom of ``model``."""
    found = {}
    for _, state in geoms(model):
        attrib = state.getAttrib(TextureAttrib)
        assert attrib is not None, "a geom has no textures"
        for i in range(attrib.getNumOnStages()):
            stage = attrib.getOnStage(i)
            found[stage.getMode()] = (stage, attrib.getOnTexture(stage))
    return found


def write_and_move(tmp_path, monkeypatch, lod) -> Path:
    """Write the LOD, then move its directory and work from an unrelated directory, as
    a game loading an installed asset would: only paths relative to the model work."""
    written = tmp_path / "written"
    written.mkdir()
    write_lod(written, **lod)
    moved = tmp_path / "installed" / "lod-7"
    moved.parent.mkdir()
    shutil.move(str(written), str(moved))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return moved


def assert_textures_found(model: NodePath, directory, lod: dict) -> None:
    """Albedo on the default stage, not marked sRGB (like the source models it replaces); the normal map on an M_normal stage,
    read as plain data; both images read from ``directory`` (None: embedded in the model,
    holding the PNGs' pixels)."""
    textures = stages(model)
    assert set(textures) == {TextureStage.M_modulate, TextureStage.M_normal}
    albedo_stage, albedo = textures[TextureStage.M_modulate]
    assert albedo_stage == TextureStage.getDefault()
    assert albedo.getFormat() not in (Texture.F_srgb, Texture.F_srgb_alpha)
    assert textures[TextureStage.M_normal][1].getFormat() not in (Texture.F_srgb, Texture.F_srgb_alpha)
    for mode, image in ((TextureStage.M_modulate, lod["albedo"]), (TextureStage.M_normal, lod["normal_map"])):
        texture = textures[mode][1]
        assert texture.hasRamImage()
        if directory is None:
            height, width = image.shape[:2]
            assert (texture.getYSize(), texture.getXSize()) == (height, width)
            pixels = np.frombuffer(bytes(texture.getRamImageAs("RGB")), np.uint8).reshape(height, width, 3)
            expected = linear_to_srgb8(image) if mode == TextureStage.M_modulate else \
                np.round(255 * np.clip(image, 0, 1)).astype(np.uint8)
            np.testing.assert_array_equal(pixels, expected)
        else:
            # The original size: by default Panda3D scales textures to powers of two on load.
            assert (texture.getOrigFileYSize(), texture.getOrigFileXSize()) == image.shape[:2]
            assert os.path.dirname(texture.getFullpath().toOsSpecific()) == str(directory)


def test_writes_the_seven_files_and_nothing_else(tmp_path, lod):
    paths = write_lod(tmp_path, **lod, name="crate")
    names = ["crate_albedo.png", "crate_normal.png", "crate.bam", "crate.egg", "crate.obj", "crate.mtl", "crate.glb"]
    assert paths == [tmp_path / name for name in names]
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # no temporary files left behind


def test_bam_copied_alone_loads_back_with_every_triangle_exact_positions_and_both_textures(tmp_path, monkeypatch,
                                                                                            lod):
    """The .bam is the whole asset: copied alone into an empty directory, it loads with
    both textures' pixels (tests/test_autoshader.py draws such a copy)."""
    directory = write_and_move(tmp_path, monkeypatch, lod)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(directory / "lod.bam", alone / "lod.bam")
    model = load(alone / "lod.bam")
    assert triangle_count(model) == len(lod["triangles"])
    [(geom, state)] = list(geoms(model))
    for name, key, width in (("vertex", "positions", 3), ("normal", "normals", 3), ("texcoord", "uvs", 2),
                             ("tangent", "tangents", 3), ("binormal", "binormals", 3)):
        np.testing.assert_array_equal(column(geom, name, width), lod[key].astype(np.float32), err_msg=name)
    indices = geom.getPrimitive(0).decompose()
    loaded = np.array([indices.getVertex(i) for i in range(indices.getNumVertices())]).reshape(-1, 3)
    np.testing.assert_array_equal(loaded, lod["triangles"])
    assert_textures_found(model, None, lod)


def test_egg_loads_back_with_tangents_binormals_and_the_normal_stage_after_a_move(tmp_path, monkeypatch, lod):
    directory = write_and_move(tmp_path, monkeypatch, lod)
    model = load(directory / "lod.egg")
    assert triangle_count(model) == len(lod["triangles"])
    for geom, _ in geoms(model):
        vertex_format = geom.getVertexData().getFormat()
        for name in ("vertex", "normal", "texcoord", "tangent", "binormal"):
            assert vertex_format.hasColumn(name), name
    # The egg loader may reorder or merge vertices: compare the sets of positions.
    loaded = np.unique(np.concatenate([column(geom, "vertex", 3) for geom, _ in geoms(model)]), axis=0)
    np.testing.assert_array_equal(loaded, np.unique(lod["positions"].astype(np.float32), axis=0))
    assert_textures_found(model, directory, lod)


def test_obj_loads_through_assimp_with_every_triangle_and_round_trips_positions(tmp_path, lod):
    write_lod(tmp_path, **lod)
    model = load(tmp_path / "lod.obj")
    assert triangle_count(model) == len(lod["triangles"])
    # Read right by Panda3D's assimp loader: the albedo modulates, the normal map is a
    # normal map (map_Bump would give a height stage), and no specular (1.10's loader
    # takes Ka as the specular colour: Ka 1 drew the LOD washed-out white).
    assert set(stages(model)) == {TextureStage.M_modulate, TextureStage.M_normal}
    materials = model.findAllMaterials()
    assert materials.getNumMaterials() == 1
    specular = materials.getMaterial(0).getSpecular()
    assert tuple(specular)[:3] == (0.0, 0.0, 0.0), specular
    lines = (tmp_path / "lod.obj").read_text().splitlines()
    positions = np.array([line.split()[1:] for line in lines if line.startswith("v ")], np.float32)
    np.testing.assert_array_equal(positions, lod["positions"].astype(np.float32))
    faces = np.array([[int(corner.split("/")[0]) for corner in line.split()[1:]]
                      for line in lines if line.startswith("f ")])
    np.testing.assert_array_equal(faces - 1, lod["triangles"])
    material = (tmp_path / "lod.mtl").read_text().splitlines()
    assert {"map_Kd lod_albedo.png", "norm lod_normal.png", "map_Kn lod_normal.png", "Ks 0 0 0", "Ka 0 0 0"} <= \
        set(material)
    assert not any(line.lower().startswith(("map_bump", "bump")) for line in material)


def test_pngs_hold_srgb_albedo_and_raw_normals_with_the_top_row_at_v_1(tmp_path, lod):
    write_lod(tmp_path, **lod)
    albedo = np.asarray(Image.open(tmp_path / "lod_albedo.png"))
    np.testing.assert_array_equal(albedo, linear_to_srgb8(lod["albedo"][::-1]))
    normal = np.asarray(Image.open(tmp_path / "lod_normal.png"))
    np.testing.assert_array_equal(normal, np.round(255 * lod["normal_map"][::-1]).astype(np.uint8))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_an_unwritable_directory_raises_sge_error_naming_the_file(tmp_path, lod):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SgeError, match="could not write .*lod_albedo.png"):
            write_lod(locked, **lod)
    finally:
        locked.chmod(0o700)
    assert os.listdir(locked) == []


def test_a_directory_that_is_a_file_raises_sge_error_naming_the_file(tmp_path, lod):
    occupied = tmp_path / "occupied"
    occupied.write_text("")
    with pytest.raises(SgeError, match="could not write .*lod_albedo.png"):
        write_lod(occupied, **lod)


@pytest.mark.parametrize("key, bad", [("uvs", np.zeros((3, 2))), ("triangles", np.array([[0, 1, 999]])),
                                      ("albedo", np.zeros((4, 4)))])
def test_misshapen_input_raises_sge_error(tmp_path, lod, key, bad):
    with pytest.raises(SgeError):
        write_lod(tmp_path, **{**lod, key: bad})
    assert os.listdir(tmp_path) == []


def test_written_files_take_the_usual_permissions(tmp_path, lod):
    """Atomic writes go through mkstemp (0600); the files must end as open() makes them."""
    umask = os.umask(0o022)
    try:
        write_lod(tmp_path, *[lod[k] for k in ("positions", "triangles", "normals", "tangents", "binormals", "uvs",
                                               "albedo", "normal_map")])
    finally:
        os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {oct(0o644)}
