"""The LOD job's held-out quality under changed settings (issue 25; docs/BENCHMARKS.md,
"The LOD job's quality at a fixed step count"): for SOURCE decimated to TRIANGLES, one
`sge optimize` run (optimizer.lod.job.run_lod_job, the job's own code path) per settings
JSON given, each printing one JSON line of the settings changed and metrics.json's figures.

    python3 benchmarks/lod_quality.py SOURCE TRIANGLES '{"steps": 1000}' '{"steps": 1000, "coverage_weight": 1}'

With SGE_LOD_QUALITY_KEEP=DIR in the environment, run K's output folder is kept as DIR/K
(for benchmarks/peer_lod/autoshader_judge.py).

Each JSON object holds LodSettings fields (`triangles` comes from the command line;
texture_size defaults to 512, resolution to 128). Run from the repository root with the
package importable; the references are benchmarks/lod_references.py's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.gpu import GpuContext  # noqa: E402
from optimizer.lod.job import run_lod_job  # noqa: E402
from optimizer.lod.scenario import LodSettings  # noqa: E402

FIGURES = ("psnr_baseline", "iou_baseline", "psnr_after", "ssim_after", "iou_after", "written", "psnr_written",
           "iou_written", "optimize_seconds", "ms_per_step")


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, triangles = argv[0], int(argv[1])
    context = GpuContext.headless()
    keep = os.environ.get("SGE_LOD_QUALITY_KEEP")
    for index, line in enumerate(argv[2:]):
        changes = json.loads(line)
        settings = LodSettings(**{"texture_size": 512, "resolution": 128, **changes, "triangles": triangles})
        with tempfile.TemporaryDirectory() as folder:
            out = Path(keep) / str(index) if keep else Path(folder) / "out"
            metrics = run_lod_job(source, out, settings, context=context, force=True)
        print(json.dumps({"source": source, "triangles": triangles, **changes,
                          **{key: metrics[key] for key in FIGURES}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
