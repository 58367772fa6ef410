"""The per-file loop shared by encode and decode: plan outputs, run, collect failures.

A failing input never stops the others: its one-line error is kept and the command exits
with code 1 after finishing everything else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from tokquant.cli._output import Output
from tokquant.errors import InputError, OutputError, TokquantError
from tokquant.inputs import InputItem


@dataclass
class BatchResult:
    done: int = 0
    skipped: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def ensure_output_dir(out: Path) -> None:
    """Fail before any work when the output folder cannot be made or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot create the output folder ({exc.strerror or exc})"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: the output folder is not writable")


def plan_outputs(
    items: list[InputItem], target_of: Callable[[InputItem], Path], *, overwrite: bool
) -> tuple[list[tuple[InputItem, Path]], int]:
    """``(item, target)`` pairs still to write, and how many were skipped as existing."""
    plan, skipped = [], 0
    for item in items:
        target = target_of(item)
        # A target that does not exist cannot be an input; one that does is compared by
        # inode (one stat each, where resolve() walked every path component: 0.1 ms/file).
        try:
            target_stat = target.stat()
        except OSError:  # missing (or unreachable: the write will say why)
            plan.append((item, target))
            continue
        if item.path.exists() and os.path.samestat(target_stat, item.path.stat()):
            raise InputError(f"{target}: output path equals an input")
        if not overwrite:
            skipped += 1
            continue
        plan.append((item, target))
    return plan, skipped


def report(ui: Output, result: BatchResult) -> None:
    for message in result.failures:
        ui.failure(message)
    if result.skipped:
        ui.note(f"skipped {result.skipped} existing output(s); --overwrite to redo them")


def run_per_file(
    ui: Output,
    label: str,
    items: list[InputItem],
    target_of: Callable[[InputItem], Path],
    work: Callable[[InputItem, Path], int],
    *,
    overwrite: bool,
) -> BatchResult:
    """Run ``work(item, target) -> frames`` for every item whose target needs writing."""
    result = BatchResult()
    plan, result.skipped = plan_outputs(items, target_of, overwrite=overwrite)
    start = time.perf_counter()
    with ui.progress() as bar:
        task = bar.add_task(label, total=len(plan))
        for item, target in plan:
            try:
                result.frames += work(item, target)
                result.done += 1
            except OutputError:
                raise  # a full disk or an unwritable folder stops the run; done files stay
            except TokquantError as exc:
                result.failures.append(str(exc))
            bar.advance(task)
    result.seconds = time.perf_counter() - start
    report(ui, result)
    return result


def finish(
    ui: Output,
    result: BatchResult,
    verb: str,
    *,
    json_out: bool,
    extra: dict[str, Any] | None = None,
    extra_columns: dict[str, Any] | None = None,
) -> None:
    """Print the run's summary (a table, or JSON) and exit 1 if any input failed.

    ``extra`` goes into the JSON only; ``extra_columns`` into both, before the time.
    """
    columns = extra_columns or {}
    summary = {
        f"files_{verb}d": result.done,
        "files_skipped": result.skipped,
        "files_failed": len(result.failures),
        "frames": result.frames,
        **columns,
        "seconds": round(result.seconds, 3),
        "failures": result.failures,
        **(extra or {}),
    }
    if json_out:
        ui.json(summary)
    else:
        head = [
            "files",
            "skipped",
            "failed",
            "frames",
            *(k.replace("_per_", "/") for k in columns),
            "time",
        ]
        row = [result.done, result.skipped, len(result.failures), result.frames, *columns.values(),
               f"{result.seconds:.2f}s"]  # fmt: skip
        ui.table(verb, head, [row])
    if result.failures:
        raise typer.Exit(1)
