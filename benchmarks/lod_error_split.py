"""Where the panda LOD's error lies (docs/BENCHMARKS.md): per held-out view, the squared
error of 8-bit sRGB pixels split into pixels covered by only one of LOD and reference
(silhouette) and by both (interior), lit as the metric is and unlit; for each settings
JSON given (default: the job's), after its "steps" (0 by default: the baseline, plain
decimation with both maps baked). Run from the repository root."""
import json
import sys

import numpy as np

from optimizer.gpu import GpuContext
from optimizer.lod.job import LodSession
from optimizer.lod.scenario import LodSettings
from optimizer.source import load_source

UNLIT = ((0.0, 0.0, 1.0), 1.0)


def split(scenario, views):
    silhouette, interior = [], []
    for view, light in views:
        lod, reference, lod_mask, reference_mask = scenario.render(view, light)
        covered = lod_mask | reference_mask
        error = (((lod.astype(float) - reference.astype(float)) / 255.0) ** 2)[..., :3].mean(axis=-1)
        silhouette.append(error[covered & ~(lod_mask & reference_mask)].sum() / covered.sum())
        interior.append(error[lod_mask & reference_mask].sum() / covered.sum())
    return float(np.mean(silhouette)), float(np.mean(interior))


context = GpuContext.headless()
source = load_source("models/panda")
for line in sys.argv[1:] or ["{}"]:
    settings = LodSettings(**{"steps": 0, **json.loads(line)})
    session = LodSession(source, settings, context)
    session.run(settings.steps)
    if session.scenario.baked_at != session.step_index:
        session.scenario.bake()
    psnr = session.scenario.evaluate(session.held_out)["psnr"]
    views = session.held_out
    for name, lit_views in (("lit", views), ("unlit", [(view, UNLIT) for view, _ in views])):
        outline, inside = split(session.scenario, lit_views)
        print(f"{line} {name}: mse {outline + inside:.5f} = silhouette {outline:.5f} + interior {inside:.5f} "
              f"({100 * inside / (outline + inside):.0f}% interior); psnr {psnr:.2f}", flush=True)
    session.release()
