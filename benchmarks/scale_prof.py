"""Diagnostic used for docs/BENCHMARKS.md; run from the repository root with the package importable."""
import sys, time
from optimizer.gpu import GpuContext
from optimizer.scenarios.scale import ScaleScenario
ctx = GpuContext.headless()
def timed(sc, steps):
    t = time.perf_counter()
    for _ in range(steps):
        sc.optimizer.step(sc.view)
    sc.optimizer.sync()
    return 1000 * (time.perf_counter() - t) / steps
for size in [int(s) for s in sys.argv[1:]]:
    sc = ScaleScenario(ctx, size, 1024)
    o = sc.optimizer
    o.reset(0); timed(sc, 3)
    passes = {"P": "P", "plus": "theta_plus", "minus": "theta_minus", "ref": "reference", "G": "G"}
    import os
    combos = [("all", set(passes)), ("P", {"P"}), ("renders", {"plus", "minus", "ref"}), ("G", {"G"}),
              ("P+renders", {"P", "plus", "minus", "ref"}), ("renders+G", {"plus", "minus", "ref", "G"}),
              ("none", set()), ("plus", {"plus"}), ("ref", {"ref"}), ("all", set(passes))]
    if os.environ.get("SHORT"): combos = [("all", set(passes)), ("G", {"G"}), ("renders", {"plus", "minus", "ref"})]
    for label, on in combos:
        for k, name in passes.items():
            o.set_pass_active(name, k in on)
        timed(sc, 3)
        print(size, label, round(timed(sc, 30), 3), "ms", flush=True)
    for name in passes.values(): o.set_pass_active(name, True)
    o.release()
