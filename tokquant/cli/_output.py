"""One object owns everything the CLI prints: tables, progress bars, JSON, messages.

Tables and JSON go to stdout; progress and notes go to stderr, so ``--json`` output can
be piped as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class Output:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {message}")

    def failure(self, message: str) -> None:
        self.err.print(f"[red]error:[/] {message}", markup=True)

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
        """Print a table; ``numeric`` right-aligns every column but the first."""
        table = Table(title=title, title_justify="left", header_style="bold")
        for i, name in enumerate(columns):
            table.add_column(name, justify="right" if numeric and i else "left")
        for row in rows:
            table.add_row(*[str(v) for v in row])
        self.out.print(table)

    def json(self, data: Any) -> None:
        self.out.file.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
