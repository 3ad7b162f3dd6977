"""The LOD job's three quality references (issue 25; docs/BENCHMARKS.md, "The LOD job's
quality at a fixed step count"), the same files on every machine:

- ``models/panda`` (Panda3D's own model, found on its model-path; nothing written),
- the procedural bumpy torus of the subdivision scenario (optimizer/scenarios/subdivision.py,
  seed 2024, 102,400 triangles, per-vertex colours) as DIR/bumpy_torus.bam,
- a bumpy sphere (tests/procedural.py: bumpy_sphere(subdivisions=5), seed 0, 20,480
  triangles) with a 256^2 checker texture as DIR/bumpy_sphere.obj (+ .mtl, checker.png).

Usage, from the repository root: ``python3 benchmarks/lod_references.py DIR``; prints one
line per reference, ``path triangles`` (the triangle budget the benchmarks give it), in the
order above. Fixed seeds throughout: the files are byte-identical run to run. Takes a few
seconds (the torus' 102,400 triangles go through Panda3D's vertex writers).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.images import linear_to_srgb  # noqa: E402
from optimizer.lod.export import write_bam_file  # noqa: E402
from optimizer.scenarios.subdivision import bumpy_torus  # noqa: E402
from optimizer.surface.mesh import geom_node  # noqa: E402
from tests.procedural import bumpy_sphere, checker_texture, write_obj  # noqa: E402

# (reference, triangle budget): what the benchmarks decimate each to.
BUDGETS = {"panda": 300, "bumpy_torus": 500, "bumpy_sphere": 200}


def write_torus(folder: Path) -> Path:
    """The bumpy torus as a .bam; its linear vertex colours stored sRGB-encoded, as
    load_source reads a .bam's colours."""
    torus = bumpy_torus()
    path = folder / "bumpy_torus.bam"
    node = geom_node("bumpy_torus", torus.positions, torus.triangles, colors=linear_to_srgb(torus.colors),
                     normals=torus.normals)
    write_bam_file(path, node.node())
    return path


def write_sphere(folder: Path) -> Path:
    positions, triangles, uvs, normals = bumpy_sphere(subdivisions=5)
    return write_obj(folder / "bumpy_sphere.obj", positions, triangles, uvs, normals, texture_png="checker.png",
                     texture_rgb8=checker_texture(256))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 benchmarks/lod_references.py DIR  (writes the procedural references there)",
              file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    for path, name in (("models/panda", "panda"), (write_torus(folder), "bumpy_torus"),
                       (write_sphere(folder), "bumpy_sphere")):
        print(path, BUDGETS[name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
