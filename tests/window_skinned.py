"""Run by tests/test_skin.py under Xvfb (not a test itself): an OptimizerComponent on
Panda3D's skinned panda, a few steps, then prints JSON about what it hands a game:
whether lod_model() is a Character, how far its vertices move when an Actor poses it at
frame 10 of the walk (radii), and for lod_node(): its type, its LODNode's switch count and
how far each of its two levels' vertices move at that frame.

    python tests/window_skinned.py
"""

from __future__ import annotations

import json

import numpy as np
from panda3d.core import loadPrcFileData

from optimizer.lod.scenario import LodSettings
from posed_script import animated_positions  # this script's folder (tests/) is on sys.path

loadPrcFileData("sge-test", "load-display pandagl\naudio-library-name null\nsync-video false\n"
                            "win-size 128 128\ntextures-power-2 none")
WALK = {"walk": "models/panda-walk"}


def moved(actor, roots=None) -> list[float]:
    """The largest distance a vertex under each of ``roots`` (default: the actor) moves
    from its bind position when ``actor`` is posed at frame 10 of the walk."""
    roots = roots if roots is not None else [actor]
    binds = [animated_positions(root) for root in roots]  # all before posing
    actor.pose("walk", 10)
    for name in actor.getLODNames():
        actor.update(lodName=name, force=True)
    return [float(np.linalg.norm(animated_positions(root) - bind, axis=1).max()) for root, bind in zip(roots, binds)]


def main() -> None:
    from direct.actor.Actor import Actor
    from direct.showbase.ShowBase import ShowBase
    from game import OptimizerComponent
    base = ShowBase()
    reference = base.loader.loadModel("models/panda")
    component = OptimizerComponent(reference, budget_ms=0.0,
                                   settings=LodSettings(triangles=500, texture_size=64, resolution=64, steps=20))
    component.start()
    for _ in range(5):
        base.taskMgr.step()
    component.stop()
    radius = component.scenario.radius
    model = component.lod_model()
    switch = component.lod_node(reference, 10.0, anims=WALK)
    levels = [switch.getLOD(name) for name in ("high", "low")]
    print(json.dumps({
        "lod_model_characters": model.findAllMatches("**/+Character").getNumPaths(),
        "lod_model_moved": moved(Actor(model, WALK))[0] / radius,
        "switch_class": type(switch).__name__,
        "switch_node": switch.find("**/+LODNode").node().getType().getName(),
        "switches": switch.find("**/+LODNode").node().getNumSwitches(),
        "levels_moved": [distance / radius for distance in moved(switch, levels)],
    }))
    component.release()
    base.destroy()


if __name__ == "__main__":
    main()
