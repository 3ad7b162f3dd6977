"""`sge batch`: the LOD job over a library of assets, on Ray.

The driver (this module) names the assets, skips those already done, hands the rest to
Ray tasks (optimizer.lod.batch_task: one asset each) and writes what comes back into
OUT/<asset name>, staged and renamed into place whole as `sge optimize` writes its --out.
Workers return their outputs' bytes instead of writing OUT themselves: every write to OUT
happens in this one process, so a worker killed at any moment (Ctrl-C, a crash, a node
lost) leaves no half outputs, and a cluster's nodes need no write access to OUT.

A failed asset is run once more before it is reported failed; the batch goes on either
way. OUT/summary.csv and OUT/summary.json list every asset, rewritten as each one ends.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SgeError
from .job import _make_staging, _replace, check_replaceable

ATTEMPTS = 2  # a failed asset is retried once
RECORD_FILE = "batch.json"  # in each asset's folder: what it was made from (the rerun's skip test)
SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
SUMMARY_FIELDS = ["asset", "source", "status", "error", "attempts", "triangles", "psnr_before", "psnr_baseline",
                  "psnr_after", "written", "seconds", "worker"]
# Row statuses: done (written by this run), skipped (complete from an earlier run with the
# same source bytes and options), failed, interrupted (Ctrl-C came first; nothing written),
# pending (not finished yet: seen only in a summary read while the batch runs).
DONE, SKIPPED, FAILED, INTERRUPTED, PENDING = "done", "skipped", "failed", "interrupted", "pending"
# summary.json's rows also hold the source's sha256 and what a failure came from: the job
# itself raised (CAUSE_JOB: the same bytes and options fail the same way, so a rerun does
# not run them again), Ray lost the task (CAUSE_RAY: a worker crashed or was killed for
# memory, a node left), the source was not found or readable, or the outputs could not be
# written; all but CAUSE_JOB are tried again by a rerun.
JSON_FIELDS = ["source_sha256", "cause"]
CAUSE_JOB, CAUSE_RAY, CAUSE_SOURCE, CAUSE_WRITE = "job", "ray", "source", "write"
WAIT_SECONDS = 0.5  # the driver's longest wait on Ray before it looks for a Ctrl-C again
ERROR_LENGTH = 400  # characters of an error kept in its one line
CONNECT_SECONDS = 10  # for a cluster's address to answer at all


@dataclass
class Asset:
    """One source of the batch and its row of the summary."""

    name: str  # the folder OUT/<name>
    source: str  # as given
    path: Path | None = None  # the model file it names (None: it names none)
    sha256: str | None = None
    error: str | None = None  # why it cannot be run at all
    row: dict = field(default_factory=dict)


class BatchProgress:
    """What the batch tells its caller: ``message(text)``; ``asset(asset, finished,
    total)`` when an asset ends (done, skipped, failed or interrupted); ``retry(asset,
    error)`` when a failed one is run again."""

    def message(self, text: str) -> None:
        pass

    def asset(self, asset: Asset, finished: int, total: int) -> None:
        pass

    def retry(self, asset: Asset, error: str) -> None:
        pass


@dataclass
class BatchResult:
    assets: list[Asset]
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(asset.row["status"] == status for asset in self.assets)


def run_batch(sources: list[str], out: Path, options: dict, *, workers: int | None = None,
              address: str | None = None, gpus_per_task: float | None = None, force: bool = False,
              retry_failed: bool = False, progress: BatchProgress | None = None) -> BatchResult:
    """Make the LOD of every source with ``options`` (the values of `sge optimize`'s
    options, as lod.scenario.lod_settings takes them) into ``out``/<name>, on a local Ray of
    ``workers`` processes (default: one per CPU core) or the Ray cluster at ``address``
    (``workers``: the most assets in flight at once; default: as many as it schedules).
    ``gpus_per_task``: each task asks Ray for that many GPUs; refused at once when the
    cluster has fewer. Assets complete from an earlier run are skipped, and so are those
    whose job failed in the last run with the same bytes and options, unless
    ``retry_failed``. Ctrl-C stops the tasks in flight; the result says so."""
    from .scenario import lod_settings
    lod_settings(**options).validate()  # once here, not once per asset
    batch = _Batch(Path(out), plan_assets(sources), json.loads(json.dumps(options)),  # as a record reads back
                   progress or BatchProgress())
    failed_before = {} if retry_failed else batch.failures_of_last_run()
    to_run = []
    for asset in batch.assets:
        asset.row = {"asset": asset.name, "source": asset.source, "status": PENDING, "error": "", "attempts": 0,
                     "source_sha256": asset.sha256}
        record = completed_record(batch.out / asset.name, asset.sha256, batch.options) if asset.sha256 else None
        before = failed_before.get(asset.name)
        if asset.error is not None:
            asset.row.update(status=FAILED, error=asset.error, cause=CAUSE_SOURCE)
        elif record is not None:
            asset.row.update({key: record["row"].get(key) for key in SUMMARY_FIELDS if key in record["row"]},
                             asset=asset.name, source=asset.source, status=SKIPPED, error="", attempts=0)
        elif before is not None and before.get("source_sha256") == asset.sha256:
            asset.row.update(status=FAILED, error=before.get("error", ""), cause=CAUSE_JOB, again=True)
        else:
            try:
                check_replaceable(batch.out / asset.name, force)  # before its work, not after
                to_run.append(asset)
                continue
            except SgeError as error:
                asset.row.update(status=FAILED, error=_one_line(str(error)), cause=CAUSE_SOURCE)
        batch.finish(asset)
    result = BatchResult(batch.assets)
    if to_run:
        result.interrupted = _run_on_ray(batch, to_run, options, workers, address, gpus_per_task, force)
    batch.write_summary()
    return result


class _Batch:
    """A batch's output directory, assets, options (as recorded) and progress."""

    def __init__(self, out: Path, assets: list[Asset], options: dict, progress: BatchProgress):
        self.out, self.assets, self.options, self.progress = out, assets, options, progress
        self.finished = 0

    def finish(self, asset: Asset) -> None:
        self.finished += 1
        self.progress.asset(asset, self.finished, len(self.assets))

    def write_summary(self) -> None:
        write_summary(self.out, self.assets, self.options)

    def failures_of_last_run(self) -> dict[str, dict]:
        """Rows of the last summary whose job failed, by asset name, when it ran with these
        options: the same bytes would fail the same way again."""
        try:
            document = json.loads((self.out / SUMMARY_JSON).read_text())
            if document.get("options") != self.options:
                return {}
            return {row["asset"]: row for row in document["assets"]
                    if row.get("status") == FAILED and row.get("cause") == CAUSE_JOB}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}


def plan_assets(sources: list[str]) -> list[Asset]:
    """The assets of ``sources``, in the order given, each named after its model file
    (``rock.obj`` and ``rock.egg.pz``: ``rock``). A source given twice (the same file) is
    one asset. Sources of the same name are told apart by sorting their full paths: the
    first keeps the name, the next ones get -2, -3, ... (the same names whatever order the
    command line gives them in). A source that names no model file is an asset whose row
    says why."""
    from ..assets import find_model, model_stem
    from ..source import file_sha256

    assets: list[Asset] = []
    seen: set[Path] = set()
    for source in sources:
        asset = Asset(name="", source=str(source))
        try:
            filename = find_model(source)
            asset.path = Path(filename.toOsSpecific())
            if asset.path in seen:
                continue
            seen.add(asset.path)
            asset.sha256 = file_sha256(asset.path)
            if asset.sha256 is None:
                raise SgeError(f"'{source}' could not be read")
        except (SgeError, OSError) as error:
            message = str(error) if isinstance(error, SgeError) else f"cannot read '{source}': {error.strerror}"
            asset.error = _one_line(message)
        assets.append(asset)
    # Names: the model's stem. Same names are compared case-blind (a case-insensitive disk
    # would merge their folders), and a number is never one another source has as its name.
    reserved = {SUMMARY_CSV, SUMMARY_JSON}
    groups: dict[str, list[Asset]] = {}
    for asset in assets:
        asset.name = model_stem(asset.path if asset.path is not None else asset.source) or "asset"
        groups.setdefault(asset.name.casefold(), []).append(asset)
    taken = set(reserved)
    for key in sorted(groups):
        for index, asset in enumerate(sorted(groups[key], key=lambda asset: str(asset.path or asset.source))):
            if index > 0 or key in reserved:
                number = 2
                while f"{key}-{number}" in taken or f"{key}-{number}" in groups:
                    number += 1
                asset.name = f"{asset.name}-{number}"
            taken.add(asset.name.casefold())
    return assets


def completed_record(folder: Path, sha256: str, options: dict) -> dict | None:
    """The batch record of ``folder`` when it holds the complete outputs of a source with
    these bytes (sha256) made with these options, else None."""
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("source_sha256") != sha256 or record.get("options") != options:
        return None
    files = record.get("files")
    if not isinstance(files, list) or not all(isinstance(name, str) and (folder / name).is_file() for name in files):
        return None  # something of it was removed since
    return record if isinstance(record.get("row"), dict) else None


def _run_on_ray(batch: _Batch, to_run: list[Asset], options: dict, workers: int | None, address: str | None,
                gpus_per_task: float | None, force: bool) -> bool:
    """Run ``to_run`` as Ray tasks and write each result as it comes; True when Ctrl-C
    stopped it."""
    import ray

    from .batch_task import optimize_asset, sweep_scratch

    cores = _cores()
    local = address is None
    workers = workers or (cores if local else None)
    _connect(ray, workers, address)
    try:
        _check_gpus(ray, gpus_per_task, address)  # before anything is written
        batch.write_summary()  # the assets to run as pending: a summary to read while it runs
        # Each task asks for one CPU; locally Ray has `workers` of them, so that many run at
        # once. llvmpipe renders with as many threads as there are cores unless told: each
        # worker gets its share of them (on a cluster, the one CPU its task asked for).
        threads = max(1, cores // workers) if local else 1
        task = ray.remote(optimize_asset).options(
            num_cpus=1, num_gpus=gpus_per_task or 0,
            max_retries=0,  # retried here instead, so that the summary can say how often it ran
            runtime_env={"env_vars": {"LP_NUM_THREADS": str(threads)}})
        where = f"the Ray cluster at {address}" if address else \
            f"a local Ray of {workers} worker process{'es' if workers > 1 else ''}"
        batch.progress.message(
            f"{len(to_run)} of {len(batch.assets)} assets to optimise on {where}"
            + (f", {gpus_per_task:g} GPU each" if gpus_per_task else "")
            + (f", llvmpipe on {threads} thread{'s' if threads > 1 else ''} each" if local and not gpus_per_task
               else ""))
        queue = deque(to_run)
        pending: dict = {}
        with _StopOnInterrupt() as stop:
            while (queue or pending) and not stop.requested:
                while queue and (workers is None or len(pending) < workers):
                    asset = queue.popleft()
                    asset.row["attempts"] += 1
                    pending[task.remote(asset.source, options)] = asset
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
                for ref in ready:
                    asset = pending.pop(ref)
                    error, cause, result = _outcome(ray, ref)
                    if error is not None and asset.row["attempts"] < ATTEMPTS:
                        batch.progress.retry(asset, error)
                        queue.append(asset)
                        continue
                    if error is None:
                        error = _write_asset(batch, asset, result, force)
                        cause = CAUSE_WRITE
                    if error is not None:
                        asset.row.update(status=FAILED, error=error, cause=cause)
                    batch.finish(asset)
                    batch.write_summary()
            if stop.requested:
                # Killed, not asked: a task asked to stop would still save its LOD (the
                # job's Ctrl-C behaviour), only for it to be thrown away here.
                for ref in pending:
                    ray.cancel(ref, force=True)
                for asset in list(pending.values()) + list(queue):
                    asset.row.update(status=INTERRUPTED, error="stopped by Ctrl-C before it finished; nothing written")
                    batch.finish(asset)
        return stop.requested
    finally:
        ray.shutdown()
        if local:
            sweep_scratch()  # of the workers killed just now


def _connect(ray, workers: int | None, address: str | None) -> None:
    # No dashboard (ray[default] is not installed) and no worker logs on the terminal: the
    # job's own lines would interleave there; errors come back with each task's result.
    settings = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address is not None:
        _check_reachable(address)
    # Ray's C++ client writes a warning line to stderr every second while it retries (a
    # token the cluster refuses: 20 lines), past its logging settings: kept aside, and the
    # last of them said in the one line of the error.
    with _stderr_aside() as aside:
        try:
            if address is None:
                ray.init(address="local", num_cpus=workers, **settings)  # never a cluster found on this machine
            else:
                ray.init(address=address, **settings)
            return
        except Exception as error:  # ConnectionError, ValueError, RuntimeError: Ray's own words
            reason = _one_line(str(error) or type(error).__name__)
    detail = _last_log_message(aside.text)
    where = f"join the Ray cluster at {address}" if address else "start a local Ray"
    raise SgeError(f"cannot {where} ({reason}{': ' + detail if detail else ''})"
                   + ("; check the address (ray status on its head node prints it), and for a cluster with token "
                      "authentication, this machine's token (docs/SCALE_OUT.md)" if address else ""))


class _stderr_aside:
    """File descriptor 2 (C++ libraries write there too) into a temporary file; ``text``
    holds what was written once the block ends."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        self.file = tempfile.TemporaryFile()
        os.dup2(self.file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode("utf-8", "replace")
        self.file.close()
        return False


def _last_log_message(text: str) -> str:
    """The message of the last line of Ray's log output ("[time W pid tid] file.cc:N: ...")."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    return _one_line(re.sub(r"^\[[^]]*\]\s*\S+:\d+:\s*", "", lines[-1]))[:200]


def _check_reachable(address: str) -> None:
    """Refuse, in one line, a HOST:PORT (or ray://HOST:PORT) where nothing answers: Ray
    itself retries such an address for many minutes (measured: over 10 at Ray 2.60)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise SgeError(f"cannot join the Ray cluster at {address}: nothing answers there "
                       f"({error.strerror or type(error).__name__}); check the address (ray status on its head node "
                       f"prints it)") from None


def _check_gpus(ray, gpus_per_task: float | None, address: str | None) -> None:
    """Refuse, in one line, tasks that ask for more GPUs than the cluster has: Ray would
    queue them for ever (until a GPU node joins)."""
    if not gpus_per_task:
        return
    have = ray.cluster_resources().get("GPU", 0)
    if have < gpus_per_task:
        where = f"the Ray cluster at {address}" if address else "this machine (a local Ray)"
        raise SgeError(f"--gpus-per-task {gpus_per_task:g}: {where} has {have:g} GPUs, so no task could start; "
                       f"leave --gpus-per-task out to render on the CPUs, or join a cluster with GPU nodes (--address)")


def _outcome(ray, ref) -> tuple[str | None, str | None, dict | None]:
    """(None, None, result) for a task that returned, else (error in one line, cause,
    None): CAUSE_JOB when the task raised, CAUSE_RAY when Ray lost it."""
    try:
        return None, None, ray.get(ref)
    except ray.exceptions.RayTaskError as error:  # the task raised: its own exception
        cause = error.cause if error.cause is not None else error
        text = str(cause) if isinstance(cause, SgeError) else f"{type(cause).__name__}: {cause}"
        return _one_line(text), CAUSE_JOB, None
    except ray.exceptions.RayError as error:  # the worker died, was killed for memory, the node was lost
        lines = str(error).strip().splitlines()
        return _one_line(f"{type(error).__name__}: {lines[0] if lines else 'the task was lost'}"), CAUSE_RAY, None


def _write_asset(batch: _Batch, asset: Asset, result: dict, force: bool) -> str | None:
    """Write a finished asset's files into OUT/<name> whole, with its record, and fill its
    row (None); or say why it could not be written."""
    target = batch.out / asset.name
    metrics = result["metrics"]
    row = dict(asset.row, status=DONE, error="", triangles=metrics.get("triangles"),
               psnr_before=metrics.get("psnr_before"), psnr_baseline=metrics.get("psnr_baseline"),
               psnr_after=metrics.get("psnr_after"), written=metrics.get("written"), seconds=result["seconds"],
               worker=result["worker"],
               source_sha256=metrics.get("source_sha256", asset.sha256))
    record = {"source": asset.source, "source_sha256": row["source_sha256"], "options": batch.options,
              "files": sorted(result["files"]), "row": _plain(row)}
    try:
        check_replaceable(target, force)
        staging = _make_staging(target)
        try:
            for name, data in result["files"].items():
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            (staging / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
            _replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except SgeError as error:
        return _one_line(str(error))
    except OSError as error:
        return _one_line(f"cannot write {target}: {error.strerror or error}")
    asset.row = row
    return None


def write_summary(out: Path, assets: list[Asset], options: dict) -> None:
    """OUT/summary.csv (one row per asset, SUMMARY_FIELDS) and OUT/summary.json (the same
    rows with the source's sha256 and a failure's cause, the options and the counts), each
    written atomically."""
    from ..images import atomic_write

    rows = [_plain({key: asset.row.get(key) for key in SUMMARY_FIELDS + JSON_FIELDS}) for asset in assets]
    text = io.StringIO()
    writer = csv.DictWriter(text, SUMMARY_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(value) for key, value in row.items()})
    counts = {status: sum(row["status"] == status for row in rows)
              for status in (DONE, SKIPPED, FAILED, INTERRUPTED, PENDING)}
    document = {"options": options, "counts": counts, "assets": rows}
    atomic_write(out / SUMMARY_CSV, lambda stream: stream.write(text.getvalue().encode()))
    atomic_write(out / SUMMARY_JSON, lambda stream: stream.write((json.dumps(document, indent=2) + "\n").encode()))


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return value


def _plain(row: dict) -> dict:
    """JSON-ready values (numpy's floats and ints as Python's)."""
    return {key: (value.item() if hasattr(value, "item") else value) for key, value in row.items()}


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 3] + "..."


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class _StopOnInterrupt:
    """Ctrl-C sets ``requested`` instead of raising, so the driver stops between two looks
    at Ray, never inside an asset's write; a second Ctrl-C raises as usual."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
