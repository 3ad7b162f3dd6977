"""The main job, ``sge optimize``: a detailed asset in, an optimised low-poly LOD with its
own textures out, written as .bam/.egg/.obj with a report and metrics.

``LodSession`` is the job's one code path: it makes the initial LOD, scores it, steps the
optimisation and saves the outputs. ``sge optimize`` drives it in a headless loop; the
in-game ``game.OptimizerComponent`` drives the same session from a running app's frames.
Outputs are written into a temporary directory beside ``out`` and renamed into place at
the end, so ``out`` is either the previous result or the complete new one, never half.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SgeError
from .export import write_lod
from ..gpu import GpuContext
from ..images import atomic_write, default_mode
from .report import difference_row, write_report
from .geometry import SHAPE_KEPT
from .scenario import SHAPE_VIEWS, LodScenario, LodSettings
from ..sge import HISTORY_LENGTH
from ..source import SourceMesh, load_source

REPORT_VIEWS = 3
# 3: the LOD's vertex frames and last unfolded positions too; 4: binormals along -v;
# 5: the kind's state as the kind gives it (every set, frozen ones too) and the pipeline's.
CHECKPOINT_VERSION = 5
CHECKPOINT_FILE = "state.npz"
HEALTH_EVERY = 25  # steps between looks at the GPU's divergence flags (one small readback)
REPORT_COLUMNS = ["reference", "initial LOD", "+ baked normal map", "optimized LOD"]
REPORT_MAGNIFY = 4  # the report's difference row: |LOD - reference| times this


class Progress:
    """What the job tells its caller as it goes: ``message(text)`` for phases and
    ``step(step, steps, loss, steps_per_second)`` now and then while optimising (``loss``
    may be None; the rate is over the steps of this run so far)."""

    def message(self, text: str) -> None:
        pass

    def step(self, step: int, steps: int, loss: float | None, steps_per_second: float) -> None:
        pass


class LodSession:
    """An LOD of ``mesh`` being optimised: the initial LOD (decimated, unwrapped, albedo
    and normal map baked from the reference) is made and scored on held-out views at
    construction. ``run`` re-bakes the maps at the end of each of the settings' rounds,
    and ``save`` does whenever the positions moved since the last bake."""

    def __init__(self, mesh: SourceMesh, settings: LodSettings, context: GpuContext,
                 progress: Progress | None = None, lod: SourceMesh | None = None,
                 decimate_from: tuple[np.ndarray, np.ndarray] | None = None):
        self.started = time.perf_counter()
        self.mesh = mesh
        self.settings = settings
        self.context = context
        self.progress = progress or Progress()
        for note in mesh.notes:
            self.progress.message(note)
        if lod is not None:
            lod_text = f"the given {len(lod.triangles)}-triangle LOD"
        elif settings.triangles >= len(mesh.triangles):  # a prop already within the budget
            lod_text = f"a LOD of the source's own {len(mesh.triangles)} triangles (within the budget of " \
                       f"{settings.triangles}: nothing to decimate)"
        else:
            lod_text = f"a {settings.triangles}-triangle LOD"
        self.progress.message(f"{mesh.name}: {len(mesh.triangles)} triangles, {len(mesh.materials)} materials; "
                              f"building {lod_text} with {settings.texture_size}^2 textures")
        self.scenario = LodScenario(context, mesh, settings, lod, decimate_from)  # decimate_from: a chain's level
        self.optimizer = self.scenario.optimizer
        self.scenario.bake()
        self.held_out = self.scenario.held_out_views()
        self.report_views = self.scenario.report_views(REPORT_VIEWS)  # framed for a person
        # "before" is the initial LOD as the job defines it: decimated, the reference's colors
        # projected into its albedo, shaded by its vertex normals. "baseline" is the same
        # with the normal map baked too: a conventional decimate-and-bake, the stronger of
        # the two, and where the optimisation starts from.
        with self.scenario.flat_normal_map():
            self.before = self.scenario.evaluate(self.held_out)
            self.report_before = [self.scenario.render(view, light, 1)[:2]
                                  for view, light in self.report_views]
        self.baseline = self.scenario.evaluate(self.held_out)
        self.report_baseline = [self.scenario.render(view, light, 1)[0] for view, light in self.report_views]
        # The baseline is written instead of the optimised LOD when it scores higher on the
        # validation views (_write): its state stays on the host, off the steps' path.
        self.validation = self.scenario.validation_views()
        self.baseline_validation = self.scenario.evaluate(self.validation, ssim=False)
        self.baseline_state = self.scenario.baked_state()
        self.curve: list[float] = []
        self.step_seconds = 0.0
        self.progress.message(f"initial LOD: PSNR {self.before['psnr']:.2f} dB, silhouette IoU {self.before['iou']:.4f}; "
                              f"with its normal map baked too: PSNR {self.baseline['psnr']:.2f} dB")
        self.progress.message(f"optimising at {settings.resolution}^2 on {context.renderer}")

    @property
    def step_index(self) -> int:
        return self.optimizer.step_index

    def step(self) -> None:
        """One step, rendered now."""
        self.scenario.step()

    def begin_step(self) -> None:
        """Set up one step for the next frame the engine renders (an app's own frame)."""
        self.scenario.begin_step()

    def losses(self, rendered: int | None = None) -> np.ndarray:
        """The mean pixel loss of every step so far, oldest first (reads the GPU's loss
        history; call it now and then, at least every HISTORY_LENGTH steps). ``rendered``:
        how many steps have been rendered, when the last ones are only set up. Raises
        SgeError when the GPU flagged a step as diverged (non-finite parameters or loss)."""
        rendered = self.optimizer.step_index if rendered is None else rendered
        missing = rendered - len(self.curve)
        if missing > 0:
            self.optimizer.sync()
            losses, flags = self.optimizer.history()
            pending = self.optimizer.step_index - rendered
            losses, flags = losses[:len(losses) - pending], flags[:len(flags) - pending]
            new_losses, new_flags = losses[-min(missing, HISTORY_LENGTH):], flags[-min(missing, HISTORY_LENGTH):]
            bad = np.flatnonzero((new_flags != 0) | ~np.isfinite(new_losses))
            if bad.size:
                step = rendered - len(new_flags) + int(bad[0])
                what = "a parameter became NaN or infinite" if new_flags[bad[0]] == 1 else "the loss is not finite"
                kept = f"; the last good checkpoint is {self.checkpoint_dir}" if self.checkpoint_dir else ""
                raise SgeError(f"the optimisation diverged at step {step} ({what}){kept}; "
                               f"lower the learning rates or the epsilons")
            self.curve.extend(new_losses)
        return np.asarray(self.curve, np.float64)

    def run(self, until: int, should_stop: Callable[[], bool] = lambda: False,
            checkpoint_every: int | None = None) -> None:
        """Step until step ``until`` (fewer on ``should_stop()`` or Ctrl-C: the last
        finished step stands). With ``checkpoint_every``, the whole state goes to
        ``checkpoint_dir`` every that many steps, after the GPU's divergence flags were
        checked (and once more where the run ends)."""
        total = until - self.step_index
        bake_steps = set(self.settings.bake_steps())
        # Reports land on the looks at the GPU (check_every), so their spacing is a multiple
        # of it: otherwise only the common multiples of the two would report.
        check_every = min(HEALTH_EVERY, checkpoint_every or HEALTH_EVERY, max(1, total // 20))
        report_every = check_every * max(1, min(HISTORY_LENGTH // 2, total // 20) // check_every)
        unfold_every = self.settings.unfold_every
        started = time.perf_counter()
        first = self.step_index
        self.interrupted = False
        try:
            while self.step_index < until:
                if should_stop():
                    break
                if unfold_every and self.step_index % unfold_every == 0 and self.step_index not in bake_steps:
                    self.scenario.unfold()  # right before a step, whose P uploads what it moved
                self.step()
                done = self.step_index - first
                baking = self.step_index in bake_steps
                if baking or done % check_every == 0 or self.step_index == until:
                    loss = float(self.losses()[-1])  # also checks for divergence
                    if baking:
                        last = self.step_index >= self.settings.steps  # the LOD's own maps: every view
                        self.scenario.bake(None if last else self.settings.round_bake_views)
                        back = f" ({self.scenario.unfolded} vertices of turned-over triangles put back)" \
                            if self.scenario.unfolded else ""
                        self.progress.message(f"step {self.step_index}: baked the maps onto the LOD as it stands{back}")
                    if done % report_every == 0 or self.step_index == until:
                        rate = done / max(time.perf_counter() - started, 1e-9)
                        self.progress.step(self.step_index, until, loss, rate)
                    if checkpoint_every and (self.step_index % checkpoint_every == 0 or self.step_index == until):
                        self.checkpoint()
        except KeyboardInterrupt:
            self.interrupted = True
            if checkpoint_every:
                self.losses()
                self.checkpoint()
        self.optimizer.sync()
        self.step_seconds += time.perf_counter() - started

    # --- checkpoints --------------------------------------------------------------------
    checkpoint_dir: Path | None = None
    interrupted = False  # the last run() stopped on Ctrl-C

    def checkpoint(self) -> None:
        """Write the whole state (every set's theta and Adam moments, the step, the loss
        curve, the settings, the source's hash) to ``checkpoint_dir/state.npz``,
        atomically: a kill at any moment leaves the previous checkpoint or this one."""
        self.optimizer.finish()  # the pending update: what P would apply next (same math)
        # The kind's state (its sets: positions, vertex frames, maps) and the pipeline's.
        arrays = {**self.scenario.mesh.state(self.context), **self.scenario.state()}
        arrays["curve"] = self.losses()
        meta = {"version": CHECKPOINT_VERSION, "step": self.step_index, "settings": dataclasses.asdict(self.settings),
                "source": str(self.mesh.path), "source_sha256": self.mesh.file_hash(),
                "step_seconds": self.step_seconds, "baked_at": self.scenario.baked_at}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.checkpoint_dir / CHECKPOINT_FILE, lambda stream: np.savez(stream, **arrays))

    def restore(self, directory: Path) -> None:
        """Continue from a checkpoint of this source and these settings."""
        meta, arrays = read_checkpoint(directory)
        if meta["source_sha256"] != self.mesh.file_hash():
            raise SgeError(f"the checkpoint {directory} was made from another source ({meta['source']}); "
                           f"resume it with that model, or start afresh without --resume")
        try:
            self.scenario.mesh.load_state(arrays)
            self.scenario.load_state(arrays)
        except (KeyError, ValueError) as error:
            raise SgeError(f"the checkpoint {directory} does not match this LOD ({error}); "
                           f"start afresh without --resume") from None
        self.scenario.baked_at = meta.get("baked_at")
        self.optimizer.step_index = int(meta["step"])
        self.optimizer.pending_update = False
        for _ in range(self.optimizer.step_index):  # the views already seen
            self.scenario.next_training_view()
        self.curve = [float(value) for value in arrays["curve"]]
        self.step_seconds = float(meta["step_seconds"])
        self.progress.message(f"resumed at step {self.optimizer.step_index} from {directory}")

    def save(self, out: Path, force: bool = False) -> dict:
        """Write every output of the LOD as it stands into ``out`` (atomically); returns the
        metrics. An existing ``out`` is replaced only when sge wrote it (or with ``force``)."""
        out = Path(out)
        check_replaceable(out, force)
        staging = _make_staging(out)
        try:
            metrics = self._write(staging)
            (staging / OUTPUT_MARKER).write_text(MARKER_TEXT)
            _replace(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.progress.message(f"wrote {out}")
        return metrics

    def write(self, directory: Path) -> dict:
        """Write every output of the LOD as it stands into ``directory``, an empty folder
        that the caller renames into place (``save`` does; a LOD chain writes each level
        into a subfolder of its own staging: optimizer.lod.chain); returns the metrics."""
        return self._write(directory)

    def _write(self, staging: Path) -> dict:
        settings, scenario, before = self.settings, self.scenario, self.before
        curve = self.losses()
        self.optimizer.finish()
        if scenario.baked_at != self.step_index:  # stopped inside a round
            scenario.bake()
        after = scenario.evaluate(self.held_out)
        report_after = [scenario.render(view, light, 1)[0] for view, light in self.report_views]
        # Never worse than decimate-and-bake: the LOD that scores the higher PSNR on the
        # validation views (apart from the training and held-out ones) is written.
        after_validation = scenario.evaluate(self.validation, ssim=False)
        optimised = after_validation["psnr"] > self.baseline_validation["psnr"]
        written = after if optimised else self.baseline
        arrays = scenario.lod_arrays(None if optimised else self.baseline_state)
        write_lod(staging, **arrays, name=self.mesh.name)
        steps = self.step_index
        metrics = {
            "source": str(self.mesh.path),
            "source_sha256": self.mesh.file_hash(),
            "psnr_before": before["psnr"], "psnr_after": after["psnr"],
            "ssim_before": before["ssim"], "ssim_after": after["ssim"],
            "iou_before": before["iou"], "iou_after": after["iou"],
            # Plain decimation with both maps baked (the optimisation's starting point).
            "psnr_baseline": self.baseline["psnr"], "ssim_baseline": self.baseline["ssim"],
            "iou_baseline": self.baseline["iou"],
            # What was written, of the two, and its held-out figures (after or baseline).
            "written": "optimised" if optimised else "baseline",
            "psnr_written": written["psnr"], "ssim_written": written["ssim"], "iou_written": written["iou"],
            "held_out_views": len(self.held_out),
            # The choice's figures, on views of their own.
            "psnr_validation_optimised": after_validation["psnr"],
            "psnr_validation_baseline": self.baseline_validation["psnr"],
            "validation_views": len(self.validation),
            "decimation_kept_borders": scenario.kept_borders,
            "triangles": int(len(arrays["triangles"])),
            "triangles_requested": settings.triangles,
            "source_triangles": int(len(self.mesh.triangles)),
            "texture_size": settings.texture_size,
            "steps": int(steps),
            "steps_requested": settings.steps,
            "res": settings.resolution,
            "seed": settings.seed,
            "seconds": time.perf_counter() - self.started,
            "optimize_seconds": self.step_seconds,
            "ms_per_step": 1000.0 * self.step_seconds / max(1, steps),
            "device": self.context.renderer,
        }
        rows = [[reference, initial, baseline, optimised] for (initial, reference), baseline, optimised
                in zip(self.report_before, self.report_baseline, report_after)]
        rows.append(difference_row(rows[0], REPORT_MAGNIFY, "first view"))
        baseline = self.baseline
        title = (f"{self.mesh.name}: {metrics['triangles']} triangles, {settings.texture_size}^2 textures, {steps} steps   "
                 f"PSNR {before['psnr']:.2f} / {baseline['psnr']:.2f} -> {after['psnr']:.2f} dB   "
                 f"SSIM {before['ssim']:.3f} / {baseline['ssim']:.3f} -> {after['ssim']:.3f}   "
                 f"(initial / + baked normal map -> optimized)   "
                 f"IoU {before['iou']:.3f} -> {after['iou']:.3f}")
        title += f"   written: {metrics['written']}"
        write_report(staging / "report.png", REPORT_COLUMNS, rows, curve, title)
        self.progress.message(f"PSNR {before['psnr']:.2f} -> {after['psnr']:.2f} dB ({after['psnr'] - baseline['psnr']:+.2f} "
                              f"over decimation with both maps baked), SSIM {before['ssim']:.4f} -> {after['ssim']:.4f}, "
                              f"silhouette IoU {before['iou']:.4f} -> {after['iou']:.4f}")
        on = f"dB on {len(self.validation)} validation views"
        self.progress.message(
            f"written: the optimised LOD, PSNR {after_validation['psnr']:.2f} {on} against decimate-and-bake's "
            f"{self.baseline_validation['psnr']:.2f}" if optimised else
            f"written: decimate-and-bake (the LOD before the steps), PSNR {self.baseline_validation['psnr']:.2f} {on} "
            f"against the optimised LOD's {after_validation['psnr']:.2f}")
        if written["iou"] < SHAPE_KEPT:
            self._warn_shape_lost(written["iou"], metrics)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return metrics

    def _warn_shape_lost(self, iou: float, metrics: dict) -> None:
        """One line: the written LOD lost the source's silhouette, and a triangle budget
        whose decimation keeps it (found by decimating at growing budgets; its IoU is
        measured on the decimated mesh, from views of their own)."""
        budget, budget_iou = self.scenario.budget_keeping_shape()
        metrics["triangles_keeping_shape"], metrics["iou_keeping_shape"] = budget, budget_iou
        self.progress.message(f"warning: the LOD lost the source's shape (silhouette IoU {iou:.3f} on the held-out "
                              f"views, below {SHAPE_KEPT}); decimated to {budget} triangles it keeps it (IoU "
                              f"{budget_iou:.3f} from {SHAPE_VIEWS} other views, before any steps): try --triangles {budget}")

    def release(self) -> None:
        self.optimizer.release()


def checkpoint_path(out: Path) -> Path:
    """Where ``--checkpoint-every`` writes: OUT.checkpoint beside OUT (outside its rename)."""
    out = Path(out)
    return out.with_name(out.name + ".checkpoint")


def read_checkpoint(directory: Path) -> tuple[dict, dict]:
    """(meta, arrays) of a checkpoint directory; SgeError naming what is wrong."""
    directory = Path(directory)
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        raise SgeError(f"{directory} is not a checkpoint (no {CHECKPOINT_FILE} in it); give the OUT.checkpoint "
                       f"directory that sge optimize --checkpoint-every wrote")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        version = meta.get("version")
        if version == CHECKPOINT_VERSION:
            int(meta["step"]), meta["settings"], meta["source_sha256"]
    except Exception as error:  # a damaged file: zip, npy, JSON or missing keys
        raise SgeError(f"the checkpoint {path} is damaged ({type(error).__name__}); "
                       f"start afresh without --resume") from None
    if version != CHECKPOINT_VERSION:
        raise SgeError(f"the checkpoint {path} is of format {version}, and this sge reads format "
                       f"{CHECKPOINT_VERSION}; start afresh without --resume")
    return meta, arrays


def run_lod_job(source: str | Path, out: Path, settings: LodSettings, progress: Progress | None = None,
                context: GpuContext | None = None, should_stop: Callable[[], bool] = lambda: False,
                checkpoint_every: int | None = None, resume: Path | None = None, force: bool = False) -> dict:
    """Run the LOD job on ``source`` and write its outputs into ``out``; returns the metrics
    (with ``interrupted``: the step Ctrl-C stopped it at, whose LOD was written, or None).

    ``checkpoint_every``: write the whole state to OUT.checkpoint every that many steps.
    ``resume``: continue from such a checkpoint (its settings replace ``settings``); the
    run ends bit-identical to one never interrupted. ``force``: replace an existing
    ``out`` that sge did not write."""
    out = Path(out)
    mesh = load_source(source)  # bad input fails here, before anything is written
    if mesh.path.exists() and out.resolve() in (mesh.path.resolve(), *mesh.path.resolve().parents):
        raise SgeError(f"--out {out} holds the source model {mesh.path.name}, and the job replaces --out whole; "
                       f"give a new directory such as out/{mesh.name}-lod")
    if resume is not None:
        meta, _ = read_checkpoint(resume)
        settings = LodSettings(**meta["settings"])
    settings.validate()
    check_replaceable(out, force)
    _check_writable(out)
    context = context or GpuContext.headless()
    check_memory(settings, context)
    session = LodSession(mesh, settings, context, progress)
    try:
        if checkpoint_every:
            session.checkpoint_dir = checkpoint_path(out)
        if resume is not None:
            session.restore(Path(resume))
        session.run(settings.steps, should_stop, checkpoint_every)
        metrics = session.save(out, force)
        return {**metrics, "interrupted": session.step_index if session.interrupted else None}
    finally:
        session.release()


# The job's peak memory, measured (peak RSS on llvmpipe, where the GPU's textures live in
# host memory too; docs/RELIABILITY.md): a base, bytes per texel of the two maps (the
# parameter sets' theta, Adam moments, theta+/- and accumulators, and the bake's float64
# sums on the host) and bytes per supersampled pixel of the render targets.
# Measured on the 2-core CPU (llvmpipe), `/usr/bin/time -f %M sge optimize ... --steps 2`:
# 2048^2 maps 2.04 GB and 4096^2 7.31 GB (about 430 bytes a texel), --res 512 and 1024
# 730 and 650 bytes a supersampled pixel, 270 MB at 256^2 and --res 128. Rounded up.
MEMORY_BASE = 256 * 2**20
MEMORY_PER_TEXEL = 450  # + 6 for the baseline's 8-bit maps kept on the host
MEMORY_PER_PIXEL = 740


def job_memory(settings: LodSettings) -> int:
    """The bytes a job with these settings is estimated to need at its peak."""
    pixels = (settings.resolution * settings.supersampling) ** 2
    return MEMORY_BASE + MEMORY_PER_TEXEL * settings.texture_size ** 2 + MEMORY_PER_PIXEL * pixels


def check_memory(settings: LodSettings, context: GpuContext) -> None:
    """Refuse, in one line, a job whose estimated memory exceeds what the machine has
    available now (MemAvailable; on a software renderer the textures are host memory),
    or what the GPU has free where its driver reports it (the whole estimate: a bound)."""
    needed = job_memory(settings)
    for where, available in (("memory", available_memory()), ("GPU memory", context.free_video_memory())):
        if available is not None and needed > available:
            raise SgeError(f"this job needs about {needed / 2**30:.1f} GB of {where} (--texture-size "
                           f"{settings.texture_size}, --res {settings.resolution}) and {available / 2**30:.1f} GB "
                           f"is available; lower --texture-size or --res")


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# Written into every output directory: an existing --out is replaced whole only when it
# holds this (or an older sge's outputs), never a folder of the user's own.
OUTPUT_MARKER = ".sge-output"
MARKER_TEXT = "Written by sge; the next run with this --out replaces this folder whole.\n"


def check_replaceable(out: Path, force: bool = False) -> None:
    """Refuse an existing ``out`` that sge did not write (unless ``force``): the job
    replaces it whole, and a user's own files there would be lost."""
    if force or not out.is_dir():
        return
    entries = sorted(entry.name for entry in out.iterdir())
    older_sge = {"metrics.json", "report.png"} <= set(entries)  # written before the marker existed
    if not entries or OUTPUT_MARKER in entries or older_sge:
        return
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise SgeError(f"--out {out} exists and was not written by sge (it holds {shown}), and the job replaces --out "
                   f"whole; give a new directory, or add --force to replace it")


def _check_writable(out: Path) -> None:
    """Fail before the (long) run when ``out`` cannot be written."""
    shutil.rmtree(_make_staging(out), ignore_errors=True)


def _make_staging(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
        os.chmod(staging, default_mode(0o777))  # mkdtemp makes it 0700; it becomes ``out``
        return staging
    except OSError as error:
        reason = "a file is in the way" if isinstance(error, (FileExistsError, NotADirectoryError)) else error.strerror
        raise SgeError(f"cannot write the output directory {out}: {reason}; choose another --out") from None


def _replace(staging: Path, out: Path) -> None:
    """Rename the finished staging directory to ``out`` (replacing an older result)."""
    old = None
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise SgeError(f"{out} exists and is not a directory; choose another --out")
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "previous")
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
