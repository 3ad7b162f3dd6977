"""Baking the reference onto a LOD (``LodScenario.project_reference``): the albedo is the
reference's color seen through each texel, the normal map its shading normal in the LOD's
tangent frame. Checked on LODs whose right answer is known: the source itself, and the
source's own surface carrying wrong vertex normals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer.errors import SgeError
from optimizer.lod.scenario import LodScenario, LodSettings
from optimizer.source import load_source
from procedural import bumpy_sphere, checker_texture, vertex_normals, write_obj

SETTINGS = LodSettings(texture_size=64, resolution=64, steps=0, bake_views=32)


def bumpy_source(folder, texture_rgb8: np.ndarray):
    positions, triangles, uvs, normals = bumpy_sphere(3, 0.25)
    write_obj(folder / "bumpy.obj", positions, triangles, uvs, normals, texture_png="albedo.png",
              texture_rgb8=texture_rgb8)
    return load_source(folder / "bumpy.obj")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return bumpy_source(tmp_path_factory.mktemp("checker"), checker_texture(64))


@pytest.fixture(scope="module")
def plain_source(tmp_path_factory):
    """All one light color: whatever differs between two renders is shading."""
    return bumpy_source(tmp_path_factory.mktemp("plain"), np.full((64, 64, 3), 230, np.uint8))


def decoded_normals(scenario) -> np.ndarray:
    return scenario.normal_map.texture_values(scenario.context).reshape(-1, 3) * 2.0 - 1.0


def test_baking_the_source_onto_itself_gives_a_flat_normal_map_and_its_own_look(context, source):
    scenario = LodScenario(context, source, dataclasses.replace(SETTINGS), lod=source)
    try:
        scenario.bake()
        # Its own normals, in its own tangent frames: straight up in tangent space.
        z = decoded_normals(scenario)[:, 2]
        assert np.median(z) > 0.999 and np.mean(z > 0.98) > 0.95, np.percentile(z, [1, 5, 50])
        seen = scenario.evaluate(scenario.held_out_views(8))
        assert seen["psnr"] > 28.0 and seen["iou"] > 0.995, seen
    finally:
        scenario.optimizer.release()


def test_a_baked_normal_map_restores_the_shading_wrong_vertex_normals_lose(context, plain_source):
    source = plain_source
    # The source's surface, lit as a plain sphere: its bumps' shading is gone.
    sphere_normals = source.positions / np.linalg.norm(source.positions, axis=1, keepdims=True)
    lod = dataclasses.replace(source, normals=sphere_normals.astype(np.float32))
    assert not np.allclose(vertex_normals(source.positions, source.triangles), lod.normals, atol=0.05)
    scenario = LodScenario(context, source, dataclasses.replace(SETTINGS), lod=lod)
    try:
        views = scenario.held_out_views(8)
        scenario.project_reference(SETTINGS.bake_views, normals=False)  # the albedo alone
        flat = scenario.evaluate(views)
        scenario.bake()
        baked = scenario.evaluate(views)
        z = decoded_normals(scenario)[:, 2]
        assert np.mean(z < 0.995) > 0.5  # the map now bends the normals
        # Measured: 31.3 -> 48.7 dB.
        assert baked["psnr"] > flat["psnr"] + 10.0, (flat, baked)
    finally:
        scenario.optimizer.release()


def test_unfold_puts_back_what_turned_over_and_nothing_else(context, source):
    """A vertex pushed through the surface turns its triangles over (a hole or a back face
    in a game, which draws the LOD single-sided): unfold moves it back, halfway at a
    time, until none is turned, and leaves every other vertex where it was."""
    scenario = LodScenario(context, source, dataclasses.replace(SETTINGS, triangles=80))
    try:
        corners = scenario.corners
        start = scenario.mesh.positions.values(context).astype(np.float64)
        vertex, neighbour = corners[0, 0], corners[0, 1]
        far = int(np.argmax(np.linalg.norm(start - start[vertex], axis=1)))
        moved = start.copy()
        moved[vertex] = start[vertex] + 2.5 * (start[neighbour] - start[vertex])  # across its neighbour
        moved[far] *= 1.02  # outwards a little: turns nothing over, so it stays
        state = scenario.mesh.positions.state(context)
        scenario.mesh.positions.load_state({**state, "theta": moved.astype(np.float32)})
        assert scenario.turned_over(moved).any()
        assert scenario.unfold() >= 1
        after = scenario.safe_positions
        assert not scenario.turned_over(after).any()
        others = np.ones(len(start), bool)
        others[[vertex, far]] = False
        assert np.allclose(after[far], moved[far], atol=1e-6) and np.allclose(after[others], start[others], atol=1e-6)
        # Back along the way it came, and only part of the way.
        way = moved[vertex] - start[vertex]
        back = after[vertex] - start[vertex]
        assert np.allclose(np.cross(back, way), 0.0, atol=1e-6) and 0.0 < back @ way < way @ way
        # The GPU holds what unfold computed once a frame has run.
        scenario.optimizer.show(scenario.held_out_views(1)[0][0])
        assert np.allclose(scenario.mesh.positions.values(context), after, atol=1e-6)
    finally:
        scenario.optimizer.release()


def test_unfold_ends_when_the_last_unfold_left_a_triangle_turned(context, source):
    """A LOD loaded with a triangle already turned over (load_baked_state of a LOD another
    optimiser made) has nowhere to go back to: unfold and the bake end and keep it."""
    scenario = LodScenario(context, source, dataclasses.replace(SETTINGS, triangles=80))
    try:
        state = scenario.baked_state()
        moved = state["positions"].astype(np.float64)
        vertex, neighbour = scenario.corners[0, 0], scenario.corners[0, 1]
        moved[vertex] += 2.5 * (moved[neighbour] - moved[vertex])
        assert scenario.turned_over(moved).any()
        scenario.load_baked_state({**state, "positions": moved.astype(np.float32)})
        scenario.bake(4)
        assert np.allclose(scenario.safe_positions, moved, atol=1e-6)
    finally:
        scenario.optimizer.release()


def numpy_sums(scenario, positions: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The bake's sums of the view the targets now hold, in float64 on the host from the
    read-back pages: what the job computed before the sums moved to bake.comp."""
    from optimizer.gpu import read_pages
    from optimizer.lod.geometry import face_vectors
    from optimizer.lod.scenario import PROJECTION_DEPTH_TOLERANCE

    passes = scenario.optimizer.passes
    plus, minus, reference = (target.sample.page for target in passes.slots)
    ids, colors = read_pages(scenario.context, passes.sample), read_pages(scenario.context, passes.color)
    uvs = read_pages(scenario.context, passes.planes["uv"])[plus]
    drawn = (ids[plus][..., 0] > 0.5) & (ids[reference][..., 0] > 0.5)
    consistent = np.abs(ids[plus][..., 2] - ids[reference][..., 2])[drawn] < PROJECTION_DEPTH_TOLERANCE
    triangle = np.rint(ids[plus][..., 0][drawn]).astype(np.int64) - 1
    face = face_vectors(positions, scenario.corners)
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    to_eye = scenario.eye - positions[scenario.corners].mean(axis=1)[triangle]
    facing = np.abs(np.sum(face[triangle] * to_eye, axis=1)) / np.linalg.norm(to_eye, axis=1)
    texel = np.clip((uvs[drawn][:, :2] * size).astype(np.int64), 0, size - 1)
    index = texel[:, 1] * size + texel[:, 0]
    w = facing ** 2 * np.where(consistent, 1.0, 1e-3)
    samples = colors[reference][..., :3][drawn]
    return (np.bincount(index, w, size * size),
            np.stack([np.bincount(index, w * samples[:, c], size * size) for c in range(3)], axis=1))


def test_the_gpu_bake_sums_what_the_host_sums_from_the_pages(context, source):
    """bake.comp's fixed-point sums (albedo channels) against float64 sums on the host of
    the same pixels, view by view, to within the sums' resolution."""
    from optimizer.lod.bake import GpuBake
    from optimizer.view import eye_position

    scenario = LodScenario(context, source, dataclasses.replace(SETTINGS, triangles=200))
    try:
        g, size = scenario.geometry, SETTINGS.texture_size
        positions = scenario.safe_positions
        passes = scenario.optimizer.passes
        plus, minus, reference = (target.sample.page for target in passes.slots)
        bake = GpuBake(context, passes, (plus, reference, minus), size, False, g.triangles, len(g.tangents), 0.03)
        face = np.cross(*(positions[scenario.corners][:, k] - positions[scenario.corners][:, 0] for k in (1, 2)))
        views = scenario.views(5)
        weight, total = np.zeros(size * size), np.zeros((size * size, 3))
        bake.start(positions[scenario.corners].mean(axis=1), face / np.linalg.norm(face, axis=1, keepdims=True),
                   np.concatenate([g.tangents, g.binormals, g.normals], axis=1), 3)
        with scenario._looking():
            for _ in range(3):
                view, _ = next(views)
                scenario.optimizer.show(view, light=((0.0, 0.0, 1.0), 1.0))
                scenario.eye = eye_position(view)
                bake.add_view(scenario.eye)
                w, t = numpy_sums(scenario, positions, size)
                weight += w
                total += t
        gpu_weight, gpu_total = bake.result()
        assert weight.sum() > 100.0  # the views saw the LOD
        resolution = 3 * 16 / bake.scale  # views x samples a texel may gather x rounding
        assert np.abs(gpu_weight - weight).max() < resolution
        assert np.abs(gpu_total - total).max() < resolution
    finally:
        scenario.optimizer.release()


def _plate(folder):
    """A thin plate, red on its +z face and blue on its -z face (two quads 0.02 apart, an
    open edge around), and a LOD of it that is a sheet: the two faces as coincident quads
    facing apart, each with its own half of the atlas (+z: u < 0.5)."""
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    texture = np.zeros((8, 8, 3), np.uint8)
    texture[:, :4] = (220, 30, 30)
    texture[:, 4:] = (30, 30, 220)
    quad_uvs = (corners + 1.0) / 2.0 * [0.4, 0.9] + [0.05, 0.05]  # inside the red half
    positions = np.concatenate([np.c_[corners, np.full(4, 0.01)], np.c_[corners, np.full(4, -0.01)]])
    uvs = np.concatenate([quad_uvs, quad_uvs + [0.5, 0.0]])
    normals = np.repeat([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], 4, axis=0)
    triangles = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6]])  # +z counter-clockwise; -z reversed
    write_obj(folder / "plate.obj", positions, triangles, uvs, normals, texture_png="sides.png", texture_rgb8=texture)
    source = load_source(folder / "plate.obj")
    sheet = dataclasses.replace(source, positions=np.where(np.abs(source.positions) < 0.05, 0.0,
                                                           source.positions).astype(np.float32))
    return source, sheet


@pytest.mark.parametrize("single_sided", [True, False])
def test_a_sheets_two_faces_each_take_their_own_sides_colour(context, tmp_path, single_sided):
    """A LOD that is a sheet (a thin part the decimation collapsed): drawn two-sided its
    coincident faces z-fight, and which one a pixel shows is the rasterizer's choice (on an
    H200 one face got no samples at all). The bake draws the LOD single-sided, as a game
    does, so each face takes the colour of the side it faces."""
    source, sheet = _plate(tmp_path)
    settings = dataclasses.replace(SETTINGS, bake_single_sided=single_sided, bake_views=48)
    scenario = LodScenario(context, source, settings, lod=sheet)
    try:
        scenario.bake()
        albedo = scenario.albedo.texture_values(scenario.context)  # sRGB-encoded, row 0 at v = 0
        size = settings.texture_size
        rows = slice(int(0.15 * size), int(0.85 * size))
        red_half, blue_half = albedo[rows, int(0.1 * size):int(0.4 * size)], albedo[rows, int(0.6 * size):int(0.9 * size)]
        # Texels taking the other side's colour: blue in the +z face's half, red in the -z face's.
        wrong = np.mean(red_half[..., 2] > red_half[..., 0]) + np.mean(blue_half[..., 0] > blue_half[..., 2])
        if single_sided:
            assert wrong == 0.0 and red_half[..., 0].min() > 0.8 and blue_half[..., 2].min() > 0.8, wrong
        else:  # the check can fail: drawn two-sided, the faces' texels mix the two sides
            assert wrong > 0.05, wrong
    finally:
        scenario.optimizer.release()


def test_despeckle_replaces_only_texels_a_stray_sample_or_two_saw():
    """An isolated texel whose bake weight is a hundredth of its neighbours' (a grazing
    sample) takes their weighted mean; a texel as well seen as its neighbours keeps its
    own value however much it differs (a real feature), and so does one with fewer than 3
    known neighbours (a chart's corner)."""
    from optimizer.lod.geometry import despeckle
    values = np.full((6, 6, 3), 0.8)
    weight = np.ones((6, 6))
    known = np.ones((6, 6), bool)
    known[:, 4:] = False  # a gutter
    values[2, 1], weight[2, 1] = 0.1, 1e-4   # a speck
    values[3, 2] = 0.2                       # a feature, seen as well as its neighbours
    values[0, 3], weight[0, 3] = 0.1, 1e-4   # a corner: one known neighbour
    known[1, 2] = known[1, 3] = False
    out = despeckle(values, weight, known, ratio=0.01)
    np.testing.assert_allclose(out[2, 1], (0.8 * 6 + 0.2) / 7)  # 7 known neighbours, one the feature
    assert out[3, 2, 0] == 0.2 and out[0, 3, 0] == 0.1
    changed = np.any(out != values, axis=-1)
    assert changed.sum() == 1


def test_a_bad_despeckle_ratio_is_refused():
    for bad in (-0.01, float("nan"), float("inf")):
        with pytest.raises(SgeError, match="despeckle"):
            LodSettings(despeckle=bad).validate()
