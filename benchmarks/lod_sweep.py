"""Diagnostic used for docs/BENCHMARKS.md; run from the repository root with the package importable."""
import sys, json, time
from optimizer.gpu import GpuContext
from optimizer.source import load_source
from optimizer.scenarios.lod import LodScenario, LodSettings
ctx = GpuContext.headless()
src = load_source("models/panda")
for line in sys.argv[1:]:
    cfg = json.loads(line)
    sc = LodScenario(ctx, src, LodSettings(**cfg))
    sc.project_reference_colors()
    held = sc.held_out_views()
    b = sc.evaluate(held)
    t = time.perf_counter(); sc.run(cfg["steps"]); t = time.perf_counter() - t
    a = sc.evaluate(held)
    print(line, f"psnr {b['psnr']:.2f}->{a['psnr']:.2f} ssim {b['ssim']:.3f}->{a['ssim']:.3f} iou {b['iou']:.3f}->{a['iou']:.3f} {1000*t/cfg['steps']:.2f} ms/step", flush=True)
    sc.optimizer.release()
