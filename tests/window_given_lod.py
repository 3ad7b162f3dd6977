"""Run by tests/test_window.py under Xvfb (not a test itself): an OptimizerComponent given
a LOD the user made (a coarser bumpy sphere with its own UVs) instead of making one; after
some frames prints JSON: the live LOD's triangles, how far its positions moved, and the
triangle counts of lod_model() and of the LODNode's two children.

    python tests/window_given_lod.py REFERENCE LOD
"""

from __future__ import annotations

import json
import sys

import numpy as np
from panda3d.core import Filename, loadPrcFileData

from optimizer.lod.scenario import LodSettings
from test_lod import triangle_count  # this script's folder (tests/) is on sys.path

loadPrcFileData("sge-test", "load-display pandagl\naudio-library-name null\nsync-video false\n"
                            "win-size 256 256\ntextures-power-2 none")


def main() -> None:
    from direct.showbase.ShowBase import ShowBase
    from game import OptimizerComponent
    base = ShowBase()
    reference, lod = (base.loader.loadModel(Filename.fromOsSpecific(p)) for p in sys.argv[1:3])
    component = OptimizerComponent(reference, lod=lod, budget_ms=0.0,
                                   settings=LodSettings(texture_size=64, resolution=64, steps=100))
    before = component.optimizer.asset.positions.values(component.optimizer.context).copy()
    component.lod.reparentTo(base.render)
    component.start()
    for _ in range(30):
        base.taskMgr.step()
    component.stop()
    after = component.optimizer.asset.positions.values(component.optimizer.context)
    switch = component.lod_node(reference, 10.0)
    print(json.dumps({
        "triangles": component.triangles,
        "moved": float(np.abs(after - before).max()),
        "lod_model_triangles": triangle_count(component.lod_model()),
        "switch_children": [triangle_count(switch.getChild(i)) for i in range(switch.getNumChildren())],
        "switch_type": switch.node().getType().getName(),
    }))
    component.release()
    base.destroy()


if __name__ == "__main__":
    main()
