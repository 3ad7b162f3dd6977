"""LOD chains: ``sge optimize SOURCE --triangles 4000,1000,250`` makes one LOD per budget
and writes them as one Panda3D ``LODNode`` (``NAME.lods.bam``) with switch distances
from a stated screen-space rule, each level's own outputs in a subfolder.

The first level is the LOD job of its budget run on the source, exactly what
``sge optimize --triangles N`` alone makes. Each later level starts from the level before
it as written (its surface welded and decimated to the next budget, as the source would
be: LodSession's ``decimate_from``), then is unwrapped, baked from the source and
optimised against the source like any LOD. Measured on the panda (4000, 1000, 250;
benchmarks/lod_chain_start.py on the 2-core CPU, docs/BENCHMARKS.md), held-out PSNR of
the LOD written, from the previous level against from the source: with 400 steps
22.10 / 22.01 dB at 1000 triangles and 16.91 / 15.87 dB at 250 (silhouette IoU 0.944 /
0.929): the previous level has already been pulled onto the source's surface, and the
coarse level keeps that; with --steps 0 (no optimisation) 19.73 / 20.03 and 12.80 /
12.99, a little worse. The job's point is the optimisation, so the chain takes the
previous level.

The switch rule (SWITCH_PSNR, SCREEN_HEIGHT, SCREEN_FOV): a level is shown from the
nearest distance at which its held-out PSNR against the reference, both rendered at the
pixel size the model has on screen there, is at least 30 dB and stays so at every
farther distance measured. The sizes tried run from the job's render resolution down by
steps of sqrt(2) to MIN_SIZE pixels (LodScenario.psnr_at_sizes). The job's views put
the camera CAMERA_DISTANCE bounding-sphere radii away with a half field of view of
atan(TAN_HALF_FOV), so a view of n pixels is what a SCREEN_HEIGHT-pixel screen with a
SCREEN_FOV vertical field of view shows at the distance

    D(n) = SCREEN_HEIGHT * radius * CAMERA_DISTANCE * TAN_HALF_FOV / (n * tan(SCREEN_FOV / 2))

from the model's centre, in the source's units. The first level is shown from 0 (it is
the best there is, good enough or not); each later one from D of its size; each level is
kept for at least one sqrt(2) step (a later level that is good enough as near as an
earlier one takes the next size down), so the distances increase. For another screen,
``LODNode.setLodScale`` scales them all (by SCREEN_HEIGHT / height * tan(SCREEN_FOV / 2) /
tan(fov / 2)).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
from panda3d.core import Filename, Loader, LoaderOptions, LODNode, LPoint3f, ModelRoot, NodePath

from ..errors import SgeError
from .export import write_bam_file
from ..gpu import GpuContext
from ..images import linear_to_srgb8, srgb_to_linear
from .job import (MARKER_TEXT, OUTPUT_MARKER, REPORT_VIEWS, LodSession, Progress, _check_writable, _make_staging,
                  _replace, check_memory, check_replaceable)
from .report import caption_tile, write_report
from .scenario import CAMERA_DISTANCE, TAN_HALF_FOV, LodSettings, area_resize
from ..source import load_source

SWITCH_PSNR = 30.0  # dB: a level is good enough where its held-out PSNR reaches this
SCREEN_HEIGHT = 1080  # pixels: the screen the distances are stated for
SCREEN_FOV = 30.0  # degrees, vertical
MIN_SIZE = 4  # pixels: the smallest view size tried
SIZE_STEP = math.sqrt(2.0)
FAR_RADII = 1e4  # the last level is shown out to this many bounding radii


def level_folder(index: int) -> str:
    """The subfolder of level ``index`` (0: the most triangles)."""
    return f"lod{index}"


def check_chain(budgets) -> list[int]:
    """The triangle budgets of a chain, most first; SgeError unless each is a positive
    integer below the one before it."""
    budgets = [int(budget) for budget in budgets]
    if not budgets or min(budgets) < 1:
        raise SgeError(f"--triangles must be 1 or more, got {','.join(map(str, budgets))}")
    for before, after in zip(budgets, budgets[1:]):
        if after >= before:
            raise SgeError(f"a LOD chain's --triangles must decrease from level to level (most first, e.g. "
                           f"4000,1000,250), got {before} then {after}")
    return budgets


def view_sizes(resolution: int) -> list[int]:
    """The view sizes the switch rule tries: the render resolution, then down by sqrt(2)
    steps to MIN_SIZE pixels, largest first."""
    sizes, size = [], float(resolution)
    while round(size) >= MIN_SIZE:
        if not sizes or round(size) < sizes[-1]:
            sizes.append(int(round(size)))
        size /= SIZE_STEP
    return sizes


def switch_distance(size: int, radius: float) -> float:
    """D(size) of the module docs: where the model is ``size``-pixel-view sized on the
    stated screen, in the source's units."""
    return SCREEN_HEIGHT * radius * CAMERA_DISTANCE * TAN_HALF_FOV / (size * math.tan(math.radians(SCREEN_FOV) / 2.0))


def good_size(sizes: list[int], psnrs: np.ndarray) -> tuple[int, bool]:
    """(the largest of ``sizes`` (largest first) at and below which every PSNR is at least
    SWITCH_PSNR, whether there is one): else the smallest size, False."""
    good = None
    for size, value in zip(reversed(sizes), reversed(list(psnrs))):
        if value < SWITCH_PSNR:
            break
        good = size
    return (good, True) if good is not None else (sizes[-1], False)


def switch_sizes(sizes: list[int], good: list[int]) -> list[int]:
    """Each level's switch size, strictly decreasing: a level whose good size is not
    below the previous level's takes the next size down, so every level is shown over
    at least one step (and the last, at worst, over the smallest size)."""
    chosen = []
    for size in good:
        if chosen and size >= chosen[-1]:
            smaller = [s for s in sizes if s < chosen[-1]]
            size = smaller[0] if smaller else max(1, chosen[-1] - 1)
        chosen.append(size)
    return chosen


@dataclasses.dataclass
class _Level:
    metrics: dict
    psnr_by_size: list[float]
    report: list[np.ndarray]  # the report views, this level (8-bit sRGB)
    curve: np.ndarray


def run_lod_chain(source: str | Path, out: Path, settings: LodSettings, budgets, progress: Progress | None = None,
                  context: GpuContext | None = None, should_stop: Callable[[], bool] = lambda: False,
                  force: bool = False) -> dict:
    """Make a LOD of ``source`` for each of ``budgets`` (triangles, decreasing; the other
    settings shared) and write the chain into ``out`` (module docs): ``NAME.lods.bam``,
    ``report.png``, ``metrics.json`` and ``lod0/``, ``lod1/``, ... each holding what
    ``sge optimize`` writes for one LOD. ``out`` is written whole or not at all. Ctrl-C
    (or ``should_stop``) ends the current level's steps; the levels after it are then
    made without steps (decimated and baked), and ``interrupted`` in the metrics says
    at which level and step."""
    started = time.perf_counter()
    budgets = check_chain(budgets)
    out = Path(out)
    progress = progress or Progress()
    mesh = load_source(source)
    if mesh.path.exists() and out.resolve() in (mesh.path.resolve(), *mesh.path.resolve().parents):
        raise SgeError(f"--out {out} holds the source model {mesh.path.name}, and the job replaces --out whole; "
                       f"give a new directory such as out/{mesh.name}-lods")
    for budget in budgets:
        dataclasses.replace(settings, triangles=budget).validate()
    check_replaceable(out, force)
    _check_writable(out)
    context = context or GpuContext.headless()
    check_memory(settings, context)
    center, radius = mesh.bounds()
    sizes = view_sizes(settings.resolution)
    staging = _make_staging(out)
    try:
        levels, reference_row, interrupted, previous = [], None, None, None
        for index, budget in enumerate(budgets):
            progress.message(f"level {index} of the chain: {budget} triangles")
            # Each level after the first decimates the one before it, as written (module docs).
            session = LodSession(mesh, dataclasses.replace(settings, triangles=budget), context, progress,
                                 decimate_from=previous)
            try:
                if interrupted is None:
                    session.run(settings.steps, should_stop)
                    if session.interrupted or session.step_index < settings.steps:
                        interrupted = {"level": index, "step": session.step_index}
                        progress.message(f"stopped at step {session.step_index} of level {index}; the levels after "
                                         f"it are made without steps")
                folder = staging / level_folder(index)
                folder.mkdir()
                metrics = session.write(folder)
                if metrics["written"] == "baseline":  # draw what was written from here on
                    session.scenario.load_baked_state(session.baseline_state)
                arrays = session.scenario.lod_arrays()
                previous = (arrays["positions"], arrays["triangles"])
                psnrs = session.scenario.psnr_at_sizes(session.held_out, sizes)
                renders = [session.scenario.render(view, light, 1)[:2] for view, light in session.report_views]
                if reference_row is None:
                    reference_row = [reference for _, reference in renders]
                    # How much larger the report's first view shows the model than a held-out
                    # view does: its crop's scale, read off the projection's first row
                    # (1 / TAN_HALF_FOV before the crop; its small centring shift ignored).
                    report_crop = float(np.linalg.norm(session.report_views[0][0][0, :3])) * TAN_HALF_FOV
                levels.append(_Level(metrics, [float(value) for value in psnrs], [lod for lod, _ in renders],
                                     session.losses()))
            finally:
                session.release()
        metrics = _chain_metrics(mesh, levels, sizes, center, radius, settings, interrupted)
        metrics["seconds"] = time.perf_counter() - started
        _write_chain_model(staging / f"{mesh.name}.lods.bam", staging, mesh.name, metrics, center)
        _write_chain_report(staging / "report.png", mesh.name, levels, reference_row, metrics, report_crop)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / OUTPUT_MARKER).write_text(MARKER_TEXT)
        _replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for level in metrics["levels"]:
        progress.message(f"{level['folder']}: {level['triangles']} triangles, held-out PSNR "
                         f"{level['psnr_written']:.2f} dB, shown from {level['switch_distance']:.4g} units ({level['switch_size']}-pixel view"
                         f"{'' if level['meets_switch_psnr'] else f', below {SWITCH_PSNR:g} dB even there'})")
    progress.message(f"wrote {out}")
    return metrics


def _chain_metrics(mesh, levels: list[_Level], sizes: list[int], center, radius: float, settings: LodSettings,
                   interrupted) -> dict:
    good = [good_size(sizes, np.array(level.psnr_by_size)) for level in levels]
    chosen = switch_sizes(sizes, [size for size, _ in good])
    entries = []
    for index, (level, (good_at, meets), size) in enumerate(zip(levels, good, chosen)):
        m = level.metrics
        entries.append({
            "folder": level_folder(index), "triangles": m["triangles"], "triangles_requested": m["triangles_requested"],
            "decimated_from": "source" if index == 0 else level_folder(index - 1),
            "written": m["written"], "psnr_written": m["psnr_written"], "ssim_written": m["ssim_written"],
            "iou_written": m["iou_written"],
            # Where it is shown: from switch_distance (0 for the first) to the next level's.
            "switch_size": size, "good_size": good_at, "meets_switch_psnr": meets,
            "switch_distance": 0.0 if index == 0 else switch_distance(size, radius),
            "good_distance": switch_distance(good_at, radius),
            "psnr_by_size": dict(zip(map(str, sizes), level.psnr_by_size)),
        })
    return {
        "source": str(mesh.path), "source_sha256": mesh.file_hash(), "source_triangles": int(len(mesh.triangles)),
        "levels": entries,
        "starts_from": "previous level",
        "switch_rule": {"psnr": SWITCH_PSNR, "screen_height": SCREEN_HEIGHT, "screen_fov": SCREEN_FOV,
                        "view_sizes": sizes, "held_out_views": levels[0].metrics["held_out_views"]},
        "center": [float(c) for c in center], "radius": float(radius),
        "texture_size": settings.texture_size, "steps_requested": settings.steps, "res": settings.resolution,
        "seed": settings.seed, "interrupted": interrupted,
    }


def _load(path: Path) -> NodePath:
    options = LoaderOptions(LoaderOptions.LF_report_errors | LoaderOptions.LF_no_cache)
    node = Loader.getGlobalPtr().loadSync(Filename.fromOsSpecific(str(path)), options)
    if node is None:
        raise SgeError(f"could not read back {path.name}, just written")
    return NodePath(node)


def _write_chain_model(path: Path, staging: Path, name: str, metrics: dict, center) -> None:
    """NAME.lods.bam: a ModelRoot over a LODNode whose children are the levels' .bam
    models in order, each shown from its switch distance to the next level's, centred on
    the source's bounding sphere; the textures embedded, as in each level's .bam."""
    switch = LODNode(f"{name}-lods")
    switch.setCenter(LPoint3f(*center))
    root = NodePath(ModelRoot(f"{name}.lods"))
    path_of_switch = root.attachNewNode(switch)
    levels = metrics["levels"]
    far = FAR_RADII * metrics["radius"]
    for index, level in enumerate(levels):
        model = _load(staging / level["folder"] / f"{name}.bam")
        model.node().setName(level["folder"])
        model.reparentTo(path_of_switch)
        farthest = levels[index + 1]["switch_distance"] if index + 1 < len(levels) else far
        switch.addSwitch(farthest, level["switch_distance"])  # shown from out (near) to in (far)
    write_bam_file(path, root.node())


def _write_chain_report(path: Path, name: str, levels: list[_Level], reference_row: list[np.ndarray],
                        metrics: dict, crop: float) -> None:
    """report.png of a chain: the reference and every level from the report views, a row
    with each level as the stated screen shows it at the nearest distance where it
    reaches SWITCH_PSNR (the first report view area-averaged to that size, enlarged), and
    the levels' loss curves one after another."""
    entries = metrics["levels"]
    rows = [[reference, *(level.report[r] for level in levels)] for r, reference in enumerate(reference_row)]
    tile = reference_row[0].shape
    at_good = [caption_tile(f"where each is first >= {SWITCH_PSNR:g} dB on a {SCREEN_HEIGHT}-pixel screen, "
                            f"{SCREEN_FOV:g} deg fov (enlarged)", tile)]
    for level, entry in zip(levels, entries):
        # A report view is cropped to the model, so it is `crop` times larger than the
        # held-out views the sizes are measured on: reduce it to size / crop.
        small = _srgb8(area_resize(_linear(level.report[0]), max(1, round(entry["good_size"] / crop))))
        at_good.append(np.repeat(np.repeat(small, -(-tile[0] // small.shape[0]), axis=0),
                                   -(-tile[1] // small.shape[1]), axis=1)[:tile[0], :tile[1]])
    rows.append(at_good)
    columns = ["reference"] + [f"{entry['folder']}: {entry['triangles']} triangles" for entry in entries]
    psnrs = " / ".join(f"{entry['psnr_written']:.2f}" for entry in entries)
    distances = " / ".join(f"{entry['switch_distance']:.4g}" for entry in entries)
    title = (f"{name}: a chain of {len(entries)} LODs, each decimated from the one before   held-out PSNR {psnrs} dB   "
             f"shown from {distances} units (>= {SWITCH_PSNR:g} dB at that distance's pixel size)")
    write_report(path, columns, rows, np.concatenate([level.curve for level in levels]), title)


def _linear(srgb8: np.ndarray) -> np.ndarray:
    return srgb_to_linear(srgb8 / 255.0)


def _srgb8(linear: np.ndarray) -> np.ndarray:
    return linear_to_srgb8(linear)
