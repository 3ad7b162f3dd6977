"""The subdivision scenario's learning rates scale with its cage's vertex spacing
(optimizer.subdivision.scenario.cage_spacing, REFERENCE_SPACING)."""

import math

import numpy as np

from optimizer.subdivision.scenario import REFERENCE_SPACING, SPACING_POWER, Cage, cage_spacing


def test_spacing_is_the_edge_of_the_mean_triangle():
    """An equilateral triangle of edge 2 spaces its vertices 2; a unit square quad
    counts as 2 triangles of area 1/2 each: sqrt(4 * 0.5 / sqrt(3))."""
    triangle = Cage(np.array([[0, 0, 0], [2, 0, 0], [1, math.sqrt(3), 0]], np.float64),
                    np.array([[0, 1, 2, -1]]), np.zeros((1, 4, 2)))
    assert abs(cage_spacing(triangle) - 2.0) < 1e-9
    square = Cage(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64),
                  np.array([[0, 1, 2, 3]]), np.zeros((1, 4, 2)))
    assert abs(cage_spacing(square) - math.sqrt(2.0 / math.sqrt(3.0))) < 1e-9


def test_reference_spacing_keeps_coarse_cages_at_full_rates():
    """The panda's 118-face cage (spacing 0.259 in bounding-sphere radii) keeps the full
    rates; the torus's 2,000-face cage (about 0.09) gets about a sixtieth."""
    assert min(1.0, (0.259 / REFERENCE_SPACING) ** SPACING_POWER) == 1.0
    assert 0.01 < (0.09 / REFERENCE_SPACING) ** SPACING_POWER < 0.03
