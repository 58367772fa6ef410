"""The Ray engine: the sharded corpus of a local run, written by a Ray cluster
(``EncodeJob(engine="ray")``), and Ray Data's tokenizer callable (:class:`Tokenize`).

The inputs are cut into tasks by their own units: one tar, one Parquet row group, or
``shard_size`` plain inputs (files, manifest lines; every ``W``-th of them). Task ``r``
of ``W`` is rank ``r`` of a ``W``-rank run, so everything a rank guarantees holds per
task: its shards are written whole and then recorded in its part, a task that Ray
retries after its worker died resumes from its last shard, and a second run skips the
tasks that are done. Ray brings the scheduling, the retries and the GPUs; the tokenizer
lives in actors (one per CPU, or one per GPU with ``device="cuda"``), each loading the
checkpoint once and refusing one whose id is not the driver's. The driver joins the
parts into ``manifest.json`` as ``tokquant merge`` does, so the corpus is read, checked
and exported like any other: its codes equal the local run's key by key.

Every node reads the inputs and writes ``out`` at the paths the driver sees (a shared
file system), and works in the driver's working folder, so keys are the local run's.
Workers never open the network (the Hub's offline switches are set in their
environment).

Ray Data: a tokenizer as a callable class for ``map_batches``, with the codes
``tokquant encode`` writes for the same audio:

    >>> from tokquant.engines.ray import Tokenize
    >>> ds = ds.map_batches(Tokenize, fn_constructor_args=("model.safetensors",),
    ...                     batch_size=64, concurrency=4)  # num_gpus=1, device="cuda" on GPUs
    >>> # adds "codes" ([T, G] int64 per row) and "num_frames"

A row's audio is encoded file bytes (a ``read_binary_files`` row), a ``datasets`` Audio
cell, or an array of samples with its rate in ``rate_column``. Each actor loads the
checkpoint once and opens no network; with ``device="cuda"`` and ``num_gpus=1`` it runs
on the GPU Ray gave it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.engines.plan import refuse_ranks_on_ray
from tokquant.errors import InputError, TokquantError
from tokquant.integrations.cells import encode_cells
from tokquant.jobs.report import EncodeReport, NoProgress
from tokquant.runners.ranks import rank_items, unit_count
from tokquant.storage.folder import OutputFolder
from tokquant.tokenizer import DEFAULT_BATCH_FRAMES

if TYPE_CHECKING:
    from tokquant.engines.plan import EncodePlan
    from tokquant.jobs.report import EncodeReport, Progress

#: Tries of a task whose worker died (killed, out of memory, node lost) before the run
#: reports it; a task's resumed tries redo only its unfinished shard.
TASK_RETRIES = 3
#: Switches that keep Hugging Face libraries off the network inside workers.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run(
    plan: EncodePlan, progress: Progress | None = None, address: str | None = None
) -> EncodeReport:
    """Run ``plan`` (a corpus: ``shards``) as tasks on the Ray cluster at ``address``
    (None: the one this process joined, else ``RAY_ADDRESS``'s, else a new local one)
    and join its parts."""
    # start-up time: numpy, torch
    from tokquant.engines.outputs import made_by
    from tokquant.formats.corpus.keys import part_name
    from tokquant.formats.corpus.merge import merge_parts

    refuse_ranks_on_ray(plan)
    ray = _import_ray()
    progress = progress or NoProgress()
    tok = plan.tokenizer("cpu")  # the plan only
    items = plan.units(tok)
    plan.checked_options(tok)  # every check a task would make, made once here
    OutputFolder(plan.out).check()
    tasks = unit_count(items) or -(-len(items) // max(1, plan.shard_size))
    started_here = _connect(ray, address)
    try:
        OutputFolder(plan.out).create()  # once the cluster answered: no empty folder left
    except BaseException:
        if started_here:
            ray.shutdown()
        raise
    start = time.perf_counter()
    try:
        report = _run_tasks(ray, plan, made_by(tok), tasks, progress, len(items))
    finally:
        if started_here:
            ray.shutdown()
    merge_parts(plan.out, [plan.out / part_name(r, tasks) for r in range(tasks)])
    report.seconds = time.perf_counter() - start
    report.columns = plan.columns(tok, report.frames)
    return report


def _import_ray() -> Any:
    try:
        # optional extra: ray
        import ray
    except ImportError:
        raise InputError("`engine='ray'` needs Ray: pip install 'tokquant[ray]'") from None
    return ray


def _connect(ray: Any, address: str | None) -> bool:
    """Join ``address`` (or the cluster this process joined, or ``RAY_ADDRESS``'s), else
    start a local one; True when this call started it (and so stops it)."""
    if ray.is_initialized():
        return False

    local = address is None and "RAY_ADDRESS" not in os.environ
    _probe(address or os.environ.get("RAY_ADDRESS"))
    try:
        ray.init(
            address=address,
            include_dashboard=False if local else None,
            logging_level=logging.ERROR,  # its warnings are not the run's (--quiet, --json)
            log_to_driver=False,
            runtime_env={"env_vars": OFFLINE},
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InputError(
            f"cannot reach the Ray cluster at {address or 'RAY_ADDRESS'}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    return True


#: Seconds to wait for a cluster's address to answer before Ray is asked to join it:
#: Ray itself retries a silent address for minutes, deaf to Ctrl-C.
CONNECT_SECONDS = 10.0


def _probe(address: str | None) -> None:
    """InputError, within :data:`CONNECT_SECONDS`, when ``host:port`` (or
    ``ray://host:port``) takes no connection; ``auto``, ``local`` and no address are
    Ray's to resolve."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InputError(f"`ray_address` must be HOST:PORT (or ray://HOST:PORT), found {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _run_tasks(
    ray: Any, plan: EncodePlan, checkpoint_id: str, tasks: int, progress: Progress, total: int
) -> EncodeReport:
    """Every task on a pool of actors, each actor one task at a time; a task whose actor
    died more than :data:`TASK_RETRIES` times is reported, the others go on."""
    gpu = plan.device.startswith("cuda") or (
        plan.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0
    )
    slots = int(ray.cluster_resources().get("GPU" if gpu else "CPU", 1))
    actor_class = ray.remote(_Encoder).options(
        num_cpus=1,
        num_gpus=1 if gpu else 0,
        max_restarts=TASK_RETRIES,
        max_task_retries=TASK_RETRIES,
    )
    actors = [
        actor_class.remote(plan, checkpoint_id, os.getcwd(), "cuda" if gpu else "cpu")
        for _ in range(max(1, min(slots, tasks)))
    ]
    report = EncodeReport(
        engine="ray",
        tasks=tasks,
        actors=len(actors),
        shards_written=0,
        shards_resumed=0,
        task_seconds=0.0,
    )
    failed: list[str] = []
    waiting = list(range(tasks))
    running: dict[Any, tuple[Any, int]] = {}
    progress.start(f"encode on ray ({tasks} tasks)", total)
    try:
        while waiting or running:
            while waiting and len(running) < len(actors):
                busy = {id(a) for a, _ in running.values()}
                actor = next(a for a in actors if id(a) not in busy)
                rank = waiting.pop(0)
                running[actor.encode_task.remote(rank, tasks)] = (actor, rank)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, rank = running.pop(ref)
            try:
                done = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, TokquantError):
                    raise exc.cause from None
                raise
            except ray.exceptions.RayActorError as exc:
                failed.append(
                    f"task {rank}: its worker died {TASK_RETRIES + 1} times ({_first_line(exc)})"
                )
                actors.remove(actor)
                if not actors:
                    failed += [f"task {r}: not run (no worker left)" for r in waiting]
                    break
                continue
            report.done += done["done"]
            report.frames += done["frames"]
            report.failures += done["failures"]
            report.shards_written = (report.shards_written or 0) + done["shards_written"]
            report.shards_resumed = (report.shards_resumed or 0) + done["shards_resumed"]
            report.task_seconds = round((report.task_seconds or 0.0) + done["seconds"], 3)
            progress.advance(done["items"])
    finally:
        for actor in actors:
            ray.kill(actor)
    if failed:
        raise TokquantError(
            f"{len(failed)} of {tasks} tasks did not finish ({failed[0]}); "
            f"their finished shards are kept: run the same job again to "
            f"finish them"
        )
    return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Encoder:
    """A Ray actor: one tokenizer, loaded on the first task, encoding task after task."""

    def __init__(self, plan: EncodePlan, checkpoint_id: str, cwd: str, device: str) -> None:
        self.plan, self.checkpoint_id, self.device = plan, checkpoint_id, device
        self.cwd = cwd
        self._ready: tuple[Any, list[Any], Any] | None = None

    def _load(self) -> tuple[Any, list[Any], Any]:
        if self._ready is None:
            # start-up time: torch
            import torch

            # start-up time: torch
            from tokquant.engines.outputs import made_by

            if os.path.isdir(self.cwd):
                os.chdir(self.cwd)  # relative inputs name the driver's files, keys its keys
            torch.set_num_threads(1)
            tok = self.plan.tokenizer(self.device)
            if made_by(tok) != self.checkpoint_id:
                raise InputError(
                    f"{self.plan.checkpoint}: changed since the run began "
                    f"(another checkpoint id on this node)"
                )
            self._ready = tok, self.plan.units(tok), self.plan.checked_options(tok)
        return self._ready

    def encode_task(self, rank: int, tasks: int) -> dict[str, Any]:
        # start-up time: torch
        from tokquant.engines.outputs import to_corpus

        tok, items, options = self._load()
        start = time.perf_counter()
        report = to_corpus(
            tok,
            items,
            self.plan.out,
            options,
            rank=rank,
            world=tasks,
            shard_size=self.plan.shard_size,
        )
        return {
            "done": report.done,
            "frames": report.frames,
            "failures": report.failures,
            "items": len(rank_items(items, rank, tasks)),
            "seconds": time.perf_counter() - start,
            "shards_written": report.shards_written,
            "shards_resumed": report.shards_resumed,
        }


# Ray Data ---------------------------------------------------------------------------------


class Tokenize:
    """``map_batches`` callable: built once per actor, called per batch."""

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        audio_column: str = "audio",
        rate_column: str = "sample_rate",
        device: str = "cpu",
        levels: int | None = None,
        beam: int | None = None,
        batch_frames: int = DEFAULT_BATCH_FRAMES,
    ) -> None:
        # start-up time: torch
        from tokquant.api import load

        self.tok = load(checkpoint, device)
        self.audio_column, self.rate_column = audio_column, rate_column
        self.levels, self.beam, self.batch_frames = levels, beam, batch_frames

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A batch (``batch_format="numpy"``: column -> array) with ``codes`` and
        ``num_frames`` added; its other columns pass through."""
        import numpy as np  # start-up time: this module is imported without numpy

        codes = encode_cells(
            self.tok,
            batch[self.audio_column],
            self.audio_column,
            batch.get(self.rate_column),
            levels=self.levels,
            beam=self.beam,
            batch_frames=self.batch_frames,
        )
        column = np.empty(len(codes), dtype=object)  # rows of different lengths
        for i, c in enumerate(codes):
            column[i] = c.cpu().numpy()
        return {
            **batch,
            "codes": column,
            "num_frames": np.array([c.shape[0] for c in codes], dtype=np.int64),
        }
