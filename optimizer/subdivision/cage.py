"""A cage decimated for subdivision: of several decimations of the source to the cage's
budget, the one whose refined surface keeps the source's silhouettes best.

The LOD job's decimation (quadric error, fast-simplification's default aggressiveness 7)
makes a good triangle LOD, but a cage is judged by what Catmull-Clark makes of it, which
shrinks thin parts (an arm of a few triangles) to almost nothing. Here the source is
decimated at several aggressiveness values (``AGGRESSIVENESS``) with its open borders free
and kept, every decimation within the budget is refined ``levels`` times from its
interpolating positions (``interpolating_positions``: the refined surface passes through
the decimation's vertices, as the fit's start does), and the candidate whose refined
surface has the highest mean silhouette IoU against the source from the shape views
(CPU silhouettes, lod.silhouette; views apart from the training, bake, validation and
held-out ones) is the cage.

Measured on models/panda to 120 triangles, 2 levels (docs/BENCHMARKS.md): the refined,
interpolating cage's IoU by aggressiveness 5 / 6 / 7 / 8: 0.797 / 0.774 / 0.769 / 0.738,
the same order as after the cage fit (0.858 / 0.847 / 0.826 / 0.812) and as the fit's
held-out PSNR at its start (5: 15.89 dB, 6: 15.54, 7: 14.90); welded at 0.005 radii first
(its separate parts joined at their seams), aggressiveness 6 scores 0.875 and starts at
18.84 dB. Where the candidates' IoUs lie within CHOICE_MARGIN of the LOD job's decimation
(a smooth closed shape: the torus), that one is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SgeError
from ..lod.geometry import DEFAULT_AGGRESSIVENESS, LodGeometry, decimate, unwrapped_geometry, weld
from ..lod.silhouette import SHAPE_RESOLUTION, mean_iou, silhouettes
from .stencils import Sparse, refine

# fast-simplification's aggressiveness values tried (7 is its default, the LOD job's; lower
# ones collapse more evenly and often miss a small budget, which drops them).
AGGRESSIVENESS = (5, 6, 7, 8)
# Weld tolerances (unit radii) tried before decimating: a model of separate parts (the
# panda's 32, touching at their seams) welded a little closes seams that would otherwise
# leave open borders and thin separate pieces in a coarse cage.
WELD_TOLERANCES = (1e-6, 0.005, 0.01)
# Another decimation replaces the LOD job's only when its refined IoU is higher by this:
# measured on the torus's 500-face cage, aggressiveness 8 scored 0.9676 against 7's 0.9657
# yet started 1.44 dB lower (34.35 against 35.79 held-out); on the panda the chosen cage
# scores 0.875 against 0.769 and starts 3.9 dB higher.
CHOICE_MARGIN = 0.02
INTERPOLATING_ITERATIONS = 30


@dataclass
class CageChoice:
    """The chosen decimation and every candidate's (weld tolerance, aggressiveness,
    borders kept, triangles, refined IoU or None when over the budget)."""

    positions: np.ndarray
    triangles: np.ndarray
    aggressiveness: int
    kept_borders: bool
    iou: float
    candidates: list = field(default_factory=list)
    weld_tolerance: float = 0.0

    def summary(self) -> dict:
        return {"weld_tolerance": self.weld_tolerance, "aggressiveness": self.aggressiveness,
                "kept_borders": self.kept_borders,
                "refined_iou": round(self.iou, 5) if np.isfinite(self.iou) else None,
                "candidates": [{"weld_tolerance": w, "aggressiveness": a, "kept_borders": k, "triangles": t,
                                "refined_iou": None if i is None else round(i, 5)}
                               for w, a, k, t, i in self.candidates]}


def interpolating_positions(stencils: Sparse, target: np.ndarray,
                            iterations: int = INTERPOLATING_ITERATIONS) -> np.ndarray:
    """Cage positions whose refined vertex points land on ``target`` (the cage's own
    positions; Catmull-Clark shrinks a cage towards its inside): Richardson iterations
    c <- c + (p - S_vv c), S_vv the stencil rows of the cage's own vertices (the first
    ``len(target)`` refined vertices)."""
    target = np.asarray(target, np.float64)
    count = len(target)
    rows = stencils.row_of_entries()
    own = rows < count
    vertex_points = Sparse(stencils.offsets[:count + 1], stencils.columns[own], stencils.values[own],
                           (count, stencils.shape[1]))
    cage = target.copy()
    for _ in range(iterations):
        cage += target - vertex_points.apply(cage)
    return cage


def refined_iou(positions: np.ndarray, triangles: np.ndarray, levels: int, source_masks, views,
                size: int = SHAPE_RESOLUTION) -> float:
    """Mean silhouette IoU of a triangle cage refined ``levels`` times from its
    interpolating positions, against ``source_masks`` from ``views``."""
    faces = np.full((len(triangles), 4), -1, np.int64)
    faces[:, :3] = triangles
    refinement = refine(faces, len(positions), levels)
    quads = refinement.quads  # after a level every face is a quad
    refined = refinement.stencils.apply(interpolating_positions(refinement.stencils, positions))
    return mean_iou(refined, np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]), source_masks, views, size)


def choose_cage(positions: np.ndarray, triangles: np.ndarray, target: int, levels: int, views,
                weld_tolerance: float, aggressiveness=AGGRESSIVENESS, weld_tolerances=WELD_TOLERANCES) -> CageChoice:
    """The decimation of the (unit-frame) source whose refined surface keeps its
    silhouettes best (module docs): welded at each of ``weld_tolerances`` (at least
    ``weld_tolerance``), decimated at each ``aggressiveness``, open borders free and kept.
    A candidate over the budget is dropped unless none meets it (then the smallest)."""
    welded, welded_triangles = weld(positions, triangles, weld_tolerance)
    if len(welded_triangles) == 0:
        raise SgeError("the model has no triangles of non-zero size; give a model with real faces")
    if target >= len(welded_triangles):
        return CageChoice(welded, welded_triangles, 0, False, float("nan"), weld_tolerance=weld_tolerance)
    decimations = []
    seen = set()
    for tolerance in sorted({weld_tolerance} | {max(weld_tolerance, t) for t in weld_tolerances}):
        points, faces = (welded, welded_triangles) if tolerance == weld_tolerance else \
            weld(positions, triangles, tolerance)
        if len(faces) <= target or (len(points), len(faces)) in seen:  # nothing welded: the same candidates
            continue
        seen.add((len(points), len(faces)))
        for a in aggressiveness:
            for keep in (False, True):
                decimated = decimate(points, faces, target, keep_borders=keep, aggressiveness=a)
                if len(decimated[1]):
                    decimations.append((float(tolerance), int(a), keep) + decimated)
    if not decimations:
        raise SgeError(f"decimating to {target} triangles left none; ask for more --triangles")
    within = [d for d in decimations if len(d[4]) <= target]
    if not within:
        smallest = min(len(d[4]) for d in decimations)
        within = [d for d in decimations if len(d[4]) == smallest]
    source_masks = silhouettes(welded, welded_triangles, views, SHAPE_RESOLUTION)
    scored = {id(d): refined_iou(d[3], d[4], levels, source_masks, views) for d in within}
    # Ties (a closed mesh decimates the same with borders free or kept): the LOD job's
    # settings first. The LOD job's decimation stays unless another beats it by
    # CHOICE_MARGIN: IoU differences smaller than that did not order the fits (the torus).
    best = max(within, key=lambda d: (scored[id(d)], d[0] == weld_tolerance, -abs(d[1] - DEFAULT_AGGRESSIVENESS),
                                      not d[2]))
    default = [d for d in within if d[0] == weld_tolerance and d[1] == DEFAULT_AGGRESSIVENESS and not d[2]]
    if default and scored[id(best)] < scored[id(default[0])] + CHOICE_MARGIN:
        best = default[0]
    candidates = [(d[0], d[1], bool(d[2]), int(len(d[4])), scored.get(id(d))) for d in decimations]
    return CageChoice(best[3], best[4], best[1], bool(best[2]), float(scored[id(best)]), candidates,
                      weld_tolerance=best[0])


def cage_geometry(choice: CageChoice, texture_size: int) -> LodGeometry:
    """The chosen decimation unwrapped for a ``texture_size``^2 atlas, as build_lod does."""
    return unwrapped_geometry(choice.positions, choice.triangles, texture_size)
