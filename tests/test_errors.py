"""Bad inputs fail early with an SgeError that says what is wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer import Mesh, Settings, SgeError
from optimizer.surface.mesh import geom_node

POSITIONS = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
TRIANGLES = np.array([[0, 1, 2]], np.int32)


def test_mesh_without_triangles():
    with pytest.raises(SgeError, match="no triangles"):
        Mesh(POSITIONS, np.zeros((0, 3), np.int32), color_settings=Settings(0.02, 0.01))


@pytest.mark.parametrize("triangles", [[[0, 1, 3]], [[0, -1, 2]], [[0, 1, 2], [2, 1, 100]]])
def test_mesh_with_indices_out_of_range(triangles):
    with pytest.raises(SgeError, match="outside its 3 vertices"):
        Mesh(POSITIONS, np.array(triangles, np.int32), color_settings=Settings(0.02, 0.01))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_mesh_with_non_finite_positions(bad):
    positions = POSITIONS.copy()
    positions[1, 2] = bad
    with pytest.raises(SgeError, match=r"positions: .*NaN or Inf"):
        Mesh(positions, TRIANGLES, position_settings=Settings(0.01, 0.01))


def test_mesh_with_non_finite_colors():
    colors = np.full((3, 3), 0.5, np.float32)
    colors[2, 0] = math.nan
    with pytest.raises(SgeError, match=r"colors: .*NaN or Inf"):
        Mesh(POSITIONS, TRIANGLES, colors, color_settings=Settings(0.02, 0.01))


def test_mesh_with_malformed_positions():
    with pytest.raises(SgeError, match=r"\(V, 3\) vertex positions"):
        Mesh(POSITIONS[:, :2], TRIANGLES, color_settings=Settings(0.02, 0.01))
    with pytest.raises(SgeError, match=r"\(V, 3\) vertex positions"):
        Mesh(np.zeros((0, 3)), TRIANGLES, color_settings=Settings(0.02, 0.01))


@pytest.mark.parametrize("epsilon", [0.0, -0.01, math.nan, math.inf])
def test_settings_with_bad_epsilon(epsilon):
    with pytest.raises(SgeError, match="epsilon must be a positive finite number"):
        Settings(epsilon, 0.01)


@pytest.mark.parametrize("learning_rate", [-1e-3, math.nan, math.inf])
def test_settings_with_bad_learning_rate(learning_rate):
    with pytest.raises(SgeError, match="learning rate must be a non-negative finite number"):
        Settings(0.01, learning_rate)


def test_settings_accept_good_values():
    settings = Settings(1e-3, 0.0, (0.0, 1.0))
    assert settings.epsilon == 1e-3 and settings.learning_rate == 0.0


def test_unknown_estimator(make_optimizer):
    mesh = Mesh(POSITIONS, TRIANGLES, color_settings=Settings(0.02, 0.01))
    with pytest.raises(SgeError, match="unknown estimator 'bogus'; choose one of per-pixel, global"):
        make_optimizer(mesh, geom_node("reference", POSITIONS, TRIANGLES), (16, 16), estimator="bogus")


def test_nothing_to_optimise(make_optimizer):
    mesh = Mesh(POSITIONS, TRIANGLES)  # every set frozen
    with pytest.raises(SgeError, match="nothing to optimise"):
        make_optimizer(mesh, geom_node("reference", POSITIONS, TRIANGLES), (16, 16))


@pytest.mark.parametrize("attributes", [
    {"colors": np.ones((2, 3), np.float32)},                                          # frozen, too few
    {"colors": np.ones((3, 2), np.float32), "color_settings": Settings(0.02, 0.01)},  # optimised, 2 channels
    {"uvs": np.ones((5, 2), np.float32), "color_settings": Settings(0.02, 0.01)},     # too many uvs
], ids=["frozen-colors-too-few", "colors-two-channels", "uvs-too-many"])
def test_mesh_with_attribute_arrays_of_the_wrong_shape(attributes):
    with pytest.raises(SgeError):
        Mesh(POSITIONS, TRIANGLES, **attributes)


def test_render_targets_beyond_the_gpu_limit(context, make_optimizer):
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    mesh = Mesh(positions, [[0, 1, 2]], color_settings=Settings(0.02, 0.01))
    limit = context.gsg.getMaxTextureDimension()
    buffers = context.engine.getNumWindows()
    with pytest.raises(SgeError, match=r"allows at most .*smaller resolution or less supersampling"):
        make_optimizer(mesh, geom_node("reference", positions, [[0, 1, 2]]), (limit // 2 + 1, 8), supersampling=2)
    assert context.engine.getNumWindows() == buffers  # refused before any buffer was made
