"""One object owns everything the CLI prints: tables, progress bars, JSON, messages.

Tables and JSON go to stdout; progress and notes go to stderr, so ``--json`` output can
be piped as it is. Text that comes from users or files (names, messages) is never read as
Rich markup: a file called ``[bold]x.npy`` is printed as it is called. Nor can such text
break a message over lines or move the cursor: control characters, bidi overrides and
undecodable bytes are printed as escapes (``\\n``, ``\\u202e``, ``\\xff``), so every
message stays one line that a terminal shows as it is.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from tokquant.jobs.report import RunReport


_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on, rather than show, escaped."""
    if text.isprintable() and not _BIDI_CONTROLS.intersection(text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode spells it
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _BIDI_CONTROLS or not (ch.isprintable() or ch in " \u200c\u200d"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _console(*, stderr: bool) -> Console:
    """A console that prints user text as it is (no markup, no emoji codes) and, when
    its output is not a terminal (a pipe, a file), never cuts a table cell to fit 80
    columns: a checkpoint id piped into a script must arrive whole."""
    # COLUMNS read here, from os.environ as it is now: rich keeps the mapping it saw at
    # import, which goes stale when a library replaces os.environ (datasets.map with
    # num_proc does), and a table would then be cut to 80 columns against the user's word
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None
    console = Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False, width=width)
    if not console.is_terminal and width is None:
        console.width = _PIPE_WIDTH
    return console


#: Each command parameter's flag (``levels`` -> ``--levels``), learnt on first use from
#: the function the app registers here (building every command's parameters takes 15 ms).
FLAGS: dict[str, str] = {}
FLAG_SOURCE: list[Callable[[], dict[str, str]]] = []
_NAMED = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`]*))?`")


def as_flags(text: str) -> str:
    """A library message as the CLI says it: the library names parameters as Python
    does (```levels```, ```overwrite=True```, ```layout='delay'```), the CLI its flags
    (``--levels``, ``--overwrite``, ``--layout delay``). Names no command has are left."""

    def flag(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if name not in FLAGS:
            return match.group(0)
        if value is None or value == "True":
            return FLAGS[name]
        return f"{FLAGS[name]} {value.strip(chr(39) + chr(34))}"

    if "`" not in text:
        return text
    if not FLAGS and FLAG_SOURCE:
        FLAGS.update(FLAG_SOURCE[0]())
    return _NAMED.sub(flag, text)


#: Columns a table may take when printed into a pipe or a file.
_PIPE_WIDTH = 1000


class Output:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        # emoji=False: a name holding ":warning:" prints as those nine characters
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text(printable(as_flags(message))))

    def warn(self, message: str) -> None:
        self.err.print(Text.assemble(("warning:", "yellow"), " ", printable(as_flags(message))))

    def failure(self, message: str) -> None:
        self.err.print(Text.assemble(("error:", "red"), " ", printable(as_flags(message))))

    def failures(self, messages: list[str]) -> None:
        """Each distinct message once (a damaged shard fails every utterance it holds)."""
        for message, count in Counter(messages).items():
            self.failure(message if count == 1 else f"{message} ({count} inputs)")

    @contextlib.contextmanager
    def tracker(self, *, with_metrics: bool = False) -> Iterator[_Tracker]:
        """A progress bar for a job (:class:`tokquant.jobs.report.Progress`), shown from
        the job's first task on: a job that stops before it (a bad input, a missing
        checkpoint) prints its one error line and nothing else. It also prints a job's
        notes, and with ``with_metrics`` each step's metrics (training)."""
        if not self.quiet and not self.err.is_terminal:  # a log file: lines, not a bar
            yield _LogTracker(self.note, _log_seconds())
            return
        with contextlib.ExitStack() as stack:
            yield _Tracker(
                lambda: stack.enter_context(self.progress(with_metrics=with_metrics)), self.note
            )

    def progress(self, *, with_metrics: bool = False) -> Progress:
        """A progress bar on stderr; ``with_metrics`` shows a task's ``metrics`` field."""
        extra = [TextColumn("{task.fields[metrics]}")] if with_metrics else []
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            *extra,
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            disable=self.quiet,
            transient=False,
        )

    def table(
        self,
        title: str | None,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        numeric: bool = True,
    ) -> None:
        """Print a table (not with ``--quiet``: the exit code says how it went, and
        ``--json`` prints the same data); ``numeric`` right-aligns every column but the first."""
        if self.quiet:
            return
        table = Table(
            title=None if title is None else Text(printable(title)),
            title_justify="left",
            header_style="bold",
        )
        for i, name in enumerate(columns):
            table.add_column(Text(name), justify="right" if numeric and i else "left")
        for row in rows:
            table.add_row(*[Text(printable(str(v))) for v in row])
        self.out.print(table)

    def json(self, data: Any) -> None:
        self.out.file.write(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def key_values(self, title: str, summary: dict[str, Any], *, json_out: bool) -> None:
        """A job's summary as JSON, or a two-column table (floats to 4 digits)."""
        if json_out:
            self.json(summary)
            return
        rows = [
            [k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else v]
            for k, v in summary.items()
        ]
        self.table(title, ["", "value"], rows, numeric=False)

    def summary(
        self, report: RunReport, verb: str, *, json_out: bool, columns: dict[str, Any] | None = None
    ) -> None:
        """Failures and skips, then the run's summary (a table, or JSON); exit 1 if any
        input failed. ``columns`` go into both, before the time; what the report's kind
        adds (:meth:`~tokquant.jobs.report.RunReport.own_fields`) into the JSON only."""
        self.failures(report.failures)
        if report.skipped:
            self.note(f"skipped {report.skipped} existing output(s); --overwrite to redo them")
        columns = columns or {}
        if json_out:
            # "encode" -> files_encoded, "export" -> files_exported
            done = f"files_{verb}d" if verb.endswith("e") else f"files_{verb}ed"
            self.json(
                {
                    done: report.done,
                    "files_skipped": report.skipped,
                    "files_failed": len(report.failures),
                    "frames": report.frames,
                    **columns,
                    "seconds": round(report.seconds, 3),
                    "failures": report.failures,
                    **report.own_fields(),
                }
            )
        else:
            head = [
                "files",
                "skipped",
                "failed",
                "frames",
                *(k.replace("_per_", "/") for k in columns),
                "time",
            ]
            row = [
                report.done,
                report.skipped,
                len(report.failures),
                report.frames,
                *columns.values(),
                f"{report.seconds:.2f}s",
            ]
            self.table(verb, head, [row])
        if report.failures:
            raise typer.Exit(1)


class _Tracker:
    def __init__(self, open_bar: Callable[[], Progress], note: Callable[[str], None]) -> None:
        self._open_bar = open_bar
        self.note = note
        self.bar: Progress | None = None
        self.task: Any = None

    def start(self, label: str, total: int) -> None:
        if self.bar is None:
            self.bar = self._open_bar()
        self.task = self.bar.add_task(escape(printable(label)), total=total, metrics="")

    def update(self, completed: int, metrics: dict[str, float]) -> None:
        """A training step done, with its metrics shown beside the bar."""
        if self.bar is not None and self.task is not None:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            self.bar.update(self.task, completed=completed, metrics=shown)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None and self.task is not None and n:
            self.bar.advance(self.task, n)


#: Seconds between progress lines when stderr is no terminal (a log, a pipe, SLURM's
#: output file), where a bar would only be drawn when the work ends.
LOG_SECONDS = 30.0


def _log_seconds() -> float:
    value = os.environ.get("TOKQUANT_PROGRESS_SECONDS", "")
    try:
        seconds = float(value) if value else LOG_SECONDS
    except ValueError:
        return LOG_SECONDS
    return seconds if math.isfinite(seconds) and seconds >= 0 else LOG_SECONDS


class _LogTracker:
    """Progress as a line every ``interval`` seconds (none for work done sooner):
    ``train-vocoder: 1200/6000 (20%), 5m12s, about 20m48s left, stft=1.2 mel=0.41``."""

    def __init__(self, note: Callable[[str], None], interval: float) -> None:
        self.note, self.interval = note, interval
        self.label, self.total, self.done, self.metrics = "", 0, 0, ""
        self.started = self.last = time.monotonic()

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.metrics = label, total, 0, ""
        self.started = self.last = time.monotonic()

    def update(self, completed: int, metrics: dict[str, float]) -> None:
        self.done = completed
        self.metrics = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        self._maybe_print()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._maybe_print()

    def _maybe_print(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.started
        line = f"{self.label}: {self.done}/{self.total}"
        if self.total:
            line += f" ({100 * self.done / self.total:.0f}%)"
        line += f", {_clock(elapsed)}"
        if 0 < self.done < self.total:
            line += f", about {_clock(elapsed * (self.total - self.done) / self.done)} left"
        self.note(line + (f", {self.metrics}" if self.metrics else ""))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def other_rank() -> bool:
    """A torchrun rank other than 0: it prints nothing but errors (the job joins the
    group itself; this is only who speaks)."""
    env = os.environ
    return env.get("WORLD_SIZE", "1") not in ("", "0", "1") and env.get("RANK", "0") not in (
        "",
        "0",
    )


def run_training(job: Any, command: str, *, json_out: bool, quiet: bool) -> None:
    """``train`` and ``train-vocoder``: run ``job`` with a progress bar showing its
    losses, then its warnings and (rank 0 only) its summary; a torchrun rank then leaves
    the group."""
    ui = Output(json_mode=json_out, quiet=quiet or json_out or other_rank())
    with ui.tracker(with_metrics=True) as progress:
        report = job.run(progress)
    for warning in report.warnings:
        ui.warn(warning)
    if report.rank == 0:
        ui.key_values(command, report.summary, json_out=json_out)
    report.end_process()
