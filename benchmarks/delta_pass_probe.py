"""Where G's per-pixel Delta_p is computed, measured: in each domain's G from the targets
(the default) or in a core pass of its own that every domain's G reads
(Optimizer(delta_pass=True)). Runs one bench with the chosen placement and prints its
JSON, so the two can be run interleaved in fresh processes:

    python3 benchmarks/delta_pass_probe.py {shared,core} cube --res 64 --steps 1000 --seeds 3
    python3 benchmarks/delta_pass_probe.py {shared,core} lod
"""

import sys

from optimizer import sge
from optimizer.cli import main

placement = sys.argv.pop(1)
if placement not in ("shared", "core"):
    raise SystemExit("give shared or core, then a bench and its options")
# The benches build their optimizers inside; the probe changes the default they get.
original_init = sge.Optimizer.__init__


def init(self, *args, **kwargs):
    kwargs.setdefault("delta_pass", placement == "core")
    original_init(self, *args, **kwargs)


sge.Optimizer.__init__ = init
main(["bench", *sys.argv[1:], "--json"])
