"""The cage decimated for subdivision (optimizer/subdivision/cage.py): the chosen
decimation is within the budget and the best of the scored candidates by refined
silhouette IoU (or the LOD job's when none beats it by CHOICE_MARGIN); the interpolating positions make the refined vertex points land on the
cage's own positions. Host only (CPU silhouettes), a few seconds."""

import numpy as np

from optimizer.lod.scenario import CAMERA_DISTANCE, TAN_HALF_FOV
from optimizer.scenarios.subdivision import bumpy_torus
from optimizer.subdivision.cage import (CHOICE_MARGIN, DEFAULT_AGGRESSIVENESS, choose_cage, interpolating_positions,
                                        refined_iou)
from optimizer.lod.silhouette import silhouettes
from optimizer.subdivision.stencils import refine
from optimizer.view import perspective, random_rotation, translation


def _views(count=6, seed=5):
    rng = np.random.default_rng(seed)
    projection = perspective(TAN_HALF_FOV, near=CAMERA_DISTANCE - 1.5, far=CAMERA_DISTANCE + 1.5)
    return [projection @ translation(0, 0, -CAMERA_DISTANCE) @ random_rotation(rng) for _ in range(count)]


def _torus():
    mesh = bumpy_torus(segments=48, sides=24)
    positions = mesh.positions / np.float32(1.4)  # inside the unit sphere, as the scenario's frame
    return positions, mesh.triangles


def test_choice_is_the_best_candidate_within_the_budget():
    positions, triangles = _torus()
    views = _views()
    choice = choose_cage(positions, triangles, 120, 1, views, 1e-6, aggressiveness=(5, 7), weld_tolerances=(1e-6,))
    assert len(choice.triangles) <= 120
    scored = [c for c in choice.candidates if c[4] is not None]
    assert scored and all(c[3] <= 120 for c in scored)
    best = max(c[4] for c in scored)
    default = [c[4] for c in scored if c[1] == DEFAULT_AGGRESSIVENESS and not c[2]][0]
    if best >= default + CHOICE_MARGIN:  # another decimation clearly keeps the shape better
        assert choice.iou == best
    else:  # the LOD job's decimation stays
        assert (choice.aggressiveness, choice.kept_borders, choice.iou) == (DEFAULT_AGGRESSIVENESS, False, default)
    assert (choice.aggressiveness, choice.kept_borders) in [(c[1], c[2]) for c in scored if c[4] == choice.iou]
    # The score is what refined_iou gives the chosen decimation from the same views.
    masks = silhouettes(positions, triangles, views, 128)
    assert abs(refined_iou(choice.positions, choice.triangles, 1, masks, views) - choice.iou) < 1e-12
    summary = choice.summary()
    assert summary["aggressiveness"] == choice.aggressiveness and len(summary["candidates"]) == 4


def test_interpolating_positions_put_refined_vertex_points_on_the_cage():
    positions, triangles = _torus()
    choice = choose_cage(positions, triangles, 100, 2, _views(3), 1e-6, aggressiveness=(7,), weld_tolerances=(1e-6,))
    faces = np.full((len(choice.triangles), 4), -1, np.int64)
    faces[:, :3] = choice.triangles
    stencils = refine(faces, len(choice.positions), 2).stencils
    plain = stencils.apply(choice.positions.astype(np.float64))[:len(choice.positions)]
    cage = interpolating_positions(stencils, choice.positions)
    moved = stencils.apply(cage)[:len(choice.positions)]
    assert np.abs(plain - choice.positions).max() > 0.01  # Catmull-Clark shrinks the cage ...
    assert np.abs(moved - choice.positions).max() < 1e-4  # ... the interpolating cage undoes it
