"""Skinned characters (issue 17): Panda3D's panda (a Character, 81 joints) keeps its joints
through the LOD job. The skin read from the source reproduces Panda3D's own skinning; the
weight transfer finds the nearest surface point exactly; the written .bam and .egg are
Characters that ``Actor(lod, {"walk": "models/panda-walk"})`` poses like the source, with
a held-out PSNR against the posed source near the bind pose's; the in-game component's
lod_model() and lod_node() stay animated; a static source gets no skin.

The posed renders are Panda3D's own auto-shader in a GLX window under Xvfb (skipped, with
the reason, where no X server can be had), source and LOD drawn by it alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from panda3d.core import (CharacterJoint, Filename, Geom, InternalName, LMatrix4f, Loader, LoaderOptions, NodePath,
                          Thread, TransformState, loadPrcFileData)

from optimizer.assets import geom_node_paths
from optimizer.lod.export import write_lod
from optimizer.lod.skin import Skin, _point_triangle, nearest_surface_points, skinned_positions, transfer_weights
from optimizer.source import _column, _matrix, _triangle_indices, load_source
from procedural import bumpy_sphere, write_obj
from test_cli import run_sge
from test_export import cube_lod
from test_window import run_in_x

loadPrcFileData("test-skin", "audio-library-name null")
WALK = "models/panda-walk"
# The issue's bound on how far the posed LOD's held-out PSNR may fall below the bind
# pose's, and the bound this LOD meets (see test_posed_lod_psnr_stays_near_the_bind_pose).
ISSUE_BOUND_DB = 2.0
MEASURED_BOUND_DB = 3.0


def test_nearest_surface_points_match_brute_force():
    rng = np.random.default_rng(3)
    vertices = rng.normal(size=(200, 3))
    triangles = rng.integers(0, 200, (300, 3))
    points = rng.normal(size=(500, 3)) * 1.5
    triangle, barycentric = nearest_surface_points(vertices, triangles, points)
    distances = np.array([_point_triangle(np.repeat(p[None], len(triangles), 0), vertices[triangles])[0]
                          for p in points])
    nearest = np.einsum("pk,pkj->pj", barycentric, vertices[triangles[triangle]])
    np.testing.assert_allclose(np.square(nearest - points).sum(axis=1), distances.min(axis=1), atol=1e-12)
    assert np.all(barycentric >= -1e-12) and np.allclose(barycentric.sum(axis=1), 1.0)


def test_transfer_blends_the_nearest_triangles_corner_weights():
    """Two triangles, one per joint at each corner: a point over a triangle's edge takes
    the blend of that edge's corners, renormalised, heaviest first."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0], [6, 0, 0], [5, 1, 0]], np.float64)
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    skin = Skin("c", [f"j{k}" for k in range(6)], np.full(6, -1, np.int32), np.tile(np.eye(4), (6, 1, 1)), np.eye(4),
                np.stack([np.arange(6), np.zeros(6), np.zeros(6), np.zeros(6)], 1).astype(np.int32),
                np.tile([1.0, 0, 0, 0], (6, 1)).astype(np.float32))
    lod = transfer_weights(skin, positions, triangles, np.array([[0.25, -1.0, 0.3], [6.5, 0.0, 0.0]]))
    np.testing.assert_allclose(lod.weights, [[0.75, 0.25, 0, 0], [1.0, 0, 0, 0]], atol=1e-6)
    np.testing.assert_array_equal(lod.joints[:, :2], [[0, 1], [4, 0]])


def _posed_nets(character) -> np.ndarray:
    """Each joint's current net transform (the Character's frame), in the Skin's order."""
    nets = []

    def visit(part) -> None:
        if isinstance(part, CharacterJoint):
            matrix = LMatrix4f()
            part.getNetTransform(matrix)
            nets.append(_matrix(matrix))
        for i in range(part.getNumChildren()):
            visit(part.getChild(i))

    visit(character.getBundle(0))
    return np.array(nets)


def test_the_panda_skin_reproduces_panda3ds_own_skinning():
    """Posed at frame 10 of the walk, Panda3D's animated vertices equal the skin's linear
    blend skinning of the flattened bind pose (to float precision), except on the geom
    whose head morphs (sliders, which a LOD does not carry) the walk also moves."""
    from direct.actor.Actor import Actor
    mesh = load_source("models/panda")
    skin = mesh.skin
    assert skin is not None and skin.character_name == "panda_soft" and len(skin.joint_names) == 81
    assert skin.joints.shape == (len(mesh.positions), 4)
    np.testing.assert_allclose(skin.weights.sum(axis=1), 1.0, atol=1e-5)
    actor = Actor("models/panda", {"walk": WALK})
    actor.pose("walk", 10)
    actor.update(force=True)
    posed_nets = _posed_nets(actor.find("**/+Character").node()) @ skin.character_matrix
    predicted = skinned_positions(skin, mesh.positions, posed_nets)
    animated, morphed = [], []
    for geom_path in geom_node_paths(actor):  # in _flatten's order
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            geom = node.getGeom(g)
            used = np.unique(_triangle_indices(geom))
            data = geom.getVertexData().animateVertices(True, Thread.getCurrentThread())
            animated.append(_column(data, InternalName.getVertex(), 3, Geom.C_point)[used])
            morphed.append(np.full(len(used), geom.getVertexData().getSliderTable() is not None))
    animated, morphed = np.concatenate(animated), np.concatenate(morphed)
    moved = np.linalg.norm(animated - mesh.positions, axis=1)
    assert moved.max() > 3.0  # the walk moves it (units: the panda is about 10 tall)
    np.testing.assert_allclose(predicted[~morphed], animated[~morphed], atol=2e-4)


def test_a_static_source_has_no_skin_and_writes_no_character(tmp_path):
    positions, triangles, uvs, normals = bumpy_sphere(2, 0.2)
    mesh = load_source(write_obj(tmp_path / "sphere.obj", positions, triangles, uvs, normals))
    assert mesh.skin is None
    write_lod(tmp_path, **cube_lod())
    model = _load(tmp_path / "lod.bam")
    assert model.findAllMatches("**/+Character").isEmpty()
    assert "<Joint>" not in (tmp_path / "lod.egg").read_text()


def _load(path) -> NodePath:
    options = LoaderOptions(LoaderOptions.LF_report_errors | LoaderOptions.LF_no_cache)
    return NodePath(Loader.getGlobalPtr().loadSync(Filename.fromOsSpecific(str(path)), options))


def test_a_skin_writes_a_character_in_bam_and_egg(tmp_path):
    """Two joints (the second a child of the first, moved along x) over the cube: both
    files load as a Character with those joints, the vertices keep their positions in
    the bind pose, and turning the child joint moves exactly the vertices it holds."""
    lod = cube_lod()
    count = len(lod["positions"])
    held = lod["positions"][:, 0] > 0.4  # the +x face follows the child
    bind = np.stack([np.eye(4), np.eye(4)])
    bind[1, 3, :3] = (0.5, 0.0, 0.0)
    joints = np.zeros((count, 4), np.int32)
    joints[held, 0] = 1
    skin = Skin("crate", ["body", "lid"], np.array([-1, 0], np.int32), bind, np.eye(4), joints,
                np.tile([1.0, 0, 0, 0], (count, 1)).astype(np.float32))
    write_lod(tmp_path, **lod, name="crate", skin=skin)
    for suffix in ("bam", "egg"):
        model = _load(tmp_path / f"crate.{suffix}")
        [character] = model.findAllMatches("**/+Character")
        bundle = character.node().getBundle(0)
        body = bundle.findChild("body")
        assert body is not None and body.findChild("lid") is not None, suffix  # nested as given
        rows = [(_column(node.getGeom(g).getVertexData(), InternalName.getVertex(), 3, Geom.C_point),
                 node.getGeom(g)) for node in (p.node() for p in model.findAllMatches("**/+GeomNode"))
                for g in range(node.getNumGeoms())]
        loaded = np.concatenate([r[0] for r in rows])
        np.testing.assert_allclose(np.unique(loaded.round(5), axis=0),
                                   np.unique(lod["positions"].astype(np.float32).round(5), axis=0), atol=1e-5)
        # Turn the lid 90 degrees about z where it stands, and read Panda3D's animated vertices.
        turned = LMatrix4f.rotateMat(90, (0, 0, 1)) * LMatrix4f.translateMat(0.5, 0, 0)
        bundle.freezeJoint("lid", TransformState.makeMat(turned))
        bundle.forceUpdate()
        moved = np.concatenate([_column(geom.getVertexData().animateVertices(True, Thread.getCurrentThread()),
                                        InternalName.getVertex(), 3, Geom.C_point) for _, geom in rows])
        shift = np.linalg.norm(moved - loaded, axis=1)
        on_lid = loaded[:, 0] > 0.4
        assert shift[on_lid].min() > 0.05 and shift[~on_lid].max() < 1e-5, suffix


def test_a_skin_that_does_not_fit_the_lod_is_one_clear_error(tmp_path):
    lod = cube_lod()
    skin = Skin("c", ["a"], np.array([-1], np.int32), np.eye(4)[None], np.eye(4), np.zeros((3, 4), np.int32),
                np.zeros((3, 4), np.float32))
    from optimizer.errors import SgeError
    with pytest.raises(SgeError, match="the LOD's skin does not fit it"):
        write_lod(tmp_path, **lod, skin=skin)


def pose_lod(folder: Path, *options: str) -> dict:
    """A --steps 0 LOD of the panda (1000 triangles, 256^2 maps, ``options``), its .bam,
    posed with the source by posed_script.py at 8 frames of the walk, 16 held-out views."""
    result = run_sge(["optimize", "models/panda", "--triangles", "1000", "--texture-size", "256", "--steps", "0",
                      *options, "--out", str(folder / "lod")], folder, timeout=120)
    assert result.returncode == 0, result.stderr
    result = run_in_x([str(Path(__file__).with_name("posed_script.py")), "models/panda", str(folder / "lod/panda.bam"),
                       "--anim", WALK, "--frames", "8"], folder, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def posed(tmp_path_factory) -> dict:
    """The job's default LOD, posed."""
    return pose_lod(tmp_path_factory.mktemp("posed"))


@pytest.fixture(scope="module")
def posed_for_poses(tmp_path_factory) -> dict:
    """The LOD decimated for sample poses too (--decimate-for-poses), posed."""
    return pose_lod(tmp_path_factory.mktemp("posed-for-poses"), "--decimate-for-poses")


def test_posed_lod_vertices_move_with_the_source(posed):
    """At each of the 8 frames the LOD's vertices move (the walk swings the T-posed arms
    down: about one bounding radius) as far as the source's do, within 3%."""
    assert len(posed["frames"]) == 8
    for frame in posed["frames"]:
        assert frame["lod_moved"] > 0.5, frame
        assert abs(frame["lod_moved"] / frame["source_moved"] - 1.0) < 0.03, frame


def test_posed_lod_psnr_stays_near_the_bind_pose(posed):
    """Held-out PSNR (the job's: 16 views of its held-out seed, mid-gray background, 8-bit
    sRGB over covered pixels) of the posed LOD against the posed source, per frame,
    against the bind pose's. Measured on the 2-core CPU (llvmpipe, Xvfb): bind 19.02 dB,
    frames 16.35-17.28 dB, i.e. 1.74-2.67 dB lower; the issue's 2 dB holds with
    --decimate-for-poses (test_posed_lod_psnr_within_the_issues_2_db; docs/SKINNING.md)."""
    bind = posed["bind"]["psnr"]
    assert bind > 17.0, posed["bind"]
    for frame in posed["frames"]:
        assert frame["psnr"] >= bind - MEASURED_BOUND_DB, (frame, bind)


def test_posed_lod_psnr_within_the_issues_2_db(posed_for_poses):
    """The issue's bound, with --decimate-for-poses: per frame, the posed LOD's held-out
    PSNR stays within 2 dB of its bind-pose figure. Measured on the 2-core CPU (llvmpipe,
    Xvfb): bind 18.32 dB, frames 16.71-17.46 dB, 0.86-1.61 dB lower; its vertices move
    with the source's as the default LOD's do."""
    bind = posed_for_poses["bind"]["psnr"]
    assert bind > 17.0, posed_for_poses["bind"]
    for frame in posed_for_poses["frames"]:
        assert frame["psnr"] >= bind - ISSUE_BOUND_DB, (frame, bind)
        assert abs(frame["lod_moved"] / frame["source_moved"] - 1.0) < 0.03, frame


def test_decimating_a_bending_tube_keeps_vertices_at_its_joint():
    """A tube along x, skinned half to a root joint and half to a child at x = 0 with a
    blend between: decimated for its poses (the child turned), more of the LOD's vertices
    stay near the bend than plain quadric decimation keeps, which finds the tube straight
    everywhere in the bind pose."""
    from optimizer.lod.deforming import decimate_deforming, dense_weights, sample_poses, skin_moves
    from optimizer.lod.geometry import decimate
    rings, around = 41, 12
    x = np.linspace(-2.0, 2.0, rings)
    angle = np.linspace(0.0, 2 * np.pi, around, endpoint=False)
    positions = np.stack([np.repeat(x, around), 0.3 * np.tile(np.cos(angle), rings),
                          0.3 * np.tile(np.sin(angle), rings)], axis=1)
    triangles = []
    for r in range(rings - 1):
        for a in range(around):
            p, q = r * around + a, r * around + (a + 1) % around
            triangles += [[p, q, q + around], [p, q + around, p + around]]
    triangles = np.array(triangles)
    child = np.clip((positions[:, 0] + 0.25) / 0.5, 0.0, 1.0)
    bind = np.stack([np.eye(4), np.eye(4)])
    skin = Skin("tube", ["root", "child"], np.array([-1, 0], np.int32), bind, np.eye(4),
                np.stack([np.zeros(len(positions)), np.ones(len(positions)), np.zeros(len(positions)),
                          np.zeros(len(positions))], 1).astype(np.int32),
                np.stack([1 - child, child, np.zeros_like(child), np.zeros_like(child)], 1).astype(np.float32))
    moves = skin_moves(skin, sample_poses(skin, count=8, degrees=60.0), 1.0, np.zeros(3))
    points, faces = decimate_deforming(positions, triangles, 120, dense_weights(skin), moves)
    assert 100 <= len(faces) <= 120 and faces.max() < len(points)
    plain, _ = decimate(positions, triangles, 120)
    near = lambda p: int(np.sum(np.abs(p[:, 0]) < 0.5))
    assert near(points) > near(plain), (near(points), near(plain))


def test_transfer_by_normal_takes_the_side_a_vertex_faces():
    """Two parallel plates 0.04 apart (the source's radius about 0.7), the lower facing
    -z, the upper +z, each held by its own joint; a LOD triangle facing +z lies 0.01 above
    the lower plate: by distance alone its vertices take the lower plate's joint, by
    distance and normals (the reach 0.05 radii) the upper plate's, the side they face."""
    plate = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float64)
    positions = np.concatenate([plate, plate + [0, 0, 0.04]])
    triangles = np.array([[0, 2, 1], [3, 4, 5]])  # lower faces -z, upper faces +z
    skin = Skin("c", ["low", "high"], np.full(2, -1, np.int32), np.tile(np.eye(4), (2, 1, 1)), np.eye(4),
                np.array([[0, 0, 0, 0]] * 3 + [[1, 0, 0, 0]] * 3, np.int32),
                np.tile([1.0, 0, 0, 0], (6, 1)).astype(np.float32))
    lod = np.array([[0.2, 0.2, 0.01], [0.6, 0.2, 0.01], [0.2, 0.6, 0.01]])  # a triangle facing +z, by the lower plate
    plain = transfer_weights(skin, positions, triangles, lod)
    facing = transfer_weights(skin, positions, triangles, lod, np.array([[0, 1, 2]]))
    assert np.all(plain.joints[:, 0] == 0) and np.all(facing.joints[:, 0] == 1)


def test_component_lod_model_and_lod_node_stay_animated(tmp_path):
    result = run_in_x([str(Path(__file__).with_name("window_skinned.py"))], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["lod_model_characters"] == 1, report
    assert report["lod_model_moved"] > 0.5, report
    assert report["switch_class"] == "Actor" and report["switch_node"] == "LODNode" and report["switches"] == 2
    assert min(report["levels_moved"]) > 0.5, report  # the reference and the LOD both walk
