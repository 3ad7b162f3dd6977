"""One asset of `sge batch`, as a Ray task runs it in a worker process: the LOD job (the
one `sge optimize` runs) into a scratch folder, whose files go back to the driver as
bytes. The driver (optimizer.lod.batch) writes them into the batch's output directory, so a
worker never writes there and one killed at any moment leaves nothing half-written in it.

A worker process keeps one GL context for every task it runs (Panda3D's GraphicsEngine is
global to a process). On a Ray GPU, the context is made on the GPU Ray assigned.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from ..errors import SgeError
from ..gpu import GpuContext

# A task's scratch folder: <temp>/sge-batch/<pid>-XXXX. A worker killed mid-task (Ctrl-C on
# the driver cancels its tasks by killing them) leaves its folder behind; the next task on
# that machine, and the local driver when it ends, remove those of processes gone.
SCRATCH_FOLDER = "sge-batch"

_context: GpuContext | None = None


def optimize_asset(source: str, options: dict) -> dict:
    """Run the LOD job on ``source`` with ``options`` (the values of `sge optimize`'s
    options: cli._lod_options) and return ``files`` (relative path -> bytes, every output),
    ``metrics`` (the job's metrics.json), ``worker`` (host:pid, and the GPU) and
    ``seconds`` (the task's wall time, loading the source included). Raises SgeError (bad
    input, too little memory, divergence) or whatever else went wrong."""
    from .scenario import lod_settings

    started = time.perf_counter()
    context = gpu_context()
    scratch = make_scratch()
    try:
        out = scratch / "lod"
        metrics = _run(source, out, options, lod_settings(**options), context)
        if metrics.get("interrupted") is not None:  # a KeyboardInterrupt sent to the worker itself
            raise SgeError(f"interrupted on the worker at step {metrics['interrupted']}; nothing of it was kept")
        files = {path.relative_to(out).as_posix(): path.read_bytes()
                 for path in sorted(out.rglob("*")) if path.is_file()}
        return {"files": files, "metrics": metrics, "worker": worker_name(),
                "seconds": time.perf_counter() - started}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(source: str, out: Path, options: dict, settings, context: GpuContext) -> dict:
    """The job `sge optimize` runs with these options: one LOD, or a LOD chain when
    --triangles names several budgets. A chain's summary row is its first level's metrics,
    its ``triangles`` every level's count ("4000,1000,250")."""
    budgets = options["triangles"]
    budgets = (budgets,) if isinstance(budgets, int) else tuple(budgets)
    if len(budgets) == 1:
        from .job import run_lod_job
        return run_lod_job(source, out, settings, context=context)
    from .chain import level_folder, run_lod_chain
    chain = run_lod_chain(source, out, settings, budgets, context=context)
    first = json.loads((out / level_folder(0) / "metrics.json").read_text())
    return {**first, "triangles": ",".join(str(level["triangles"]) for level in chain["levels"]),
            "interrupted": chain["interrupted"]}


def gpu_context() -> GpuContext:
    """This process's GL context, made on first use. In a Ray task that was given GPUs,
    on the first of them: Panda3D's EGL pipe takes the device index from egl-device-index,
    which Ray's CUDA_VISIBLE_DEVICES does not reach (docs/SCALE_OUT.md)."""
    global _context
    if _context is None:
        gpus = _ray_gpu_ids()
        if gpus:
            from panda3d.core import loadPrcFileData
            loadPrcFileData("sge-batch-gpu", f"egl-device-index {int(gpus[0])}")
        _context = GpuContext.headless()
    return _context


def _ray_gpu_ids() -> list:
    try:
        import ray
    except ImportError:
        return []
    return list(ray.get_gpu_ids()) if ray.is_initialized() else []


def worker_name() -> str:
    """host:pid of this process, and the GPU Ray gave it (``gpu 0``)."""
    gpus = _ray_gpu_ids()
    return f"{socket.gethostname()}:{os.getpid()}" + (f" gpu {','.join(str(g) for g in gpus)}" if gpus else "")


def scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / SCRATCH_FOLDER


def make_scratch() -> Path:
    """A fresh scratch folder for this task (the leftovers of dead processes removed)."""
    root = scratch_root()
    root.mkdir(parents=True, exist_ok=True)
    sweep_scratch()
    return Path(tempfile.mkdtemp(dir=root, prefix=f"{os.getpid()}-"))


def sweep_scratch() -> None:
    """Remove the scratch folders of processes that no longer run (killed mid-task)."""
    root = scratch_root()
    if not root.is_dir():
        return
    for folder in root.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True
