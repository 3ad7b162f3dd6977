"""Baking the reference onto a LOD (``LodScenario.project_reference``): the albedo is the
reference's color seen through each texel, the normal map its shading normal in the LOD's
tangent frame. Checked on LODs whose right answer is known: the source itself, and the
source's own surface carrying wrong vertex normals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

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
