"""What a job returns: one :class:`RunReport`, whatever the job and its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class RunReport:
    """Counts of a run over many inputs.

    A failing input never stops the others: its one-line reason is kept in ``failures``
    and the command exits 1 after finishing everything else. ``extra`` holds what one
    kind of job adds (shards written, ranks) to its JSON summary.
    """

    done: int = 0
    skipped: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Numbers a job adds to its summary table and its JSON alike (encode: tokens, bits).
    columns: dict[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    """Where a job reports progress (the CLI's bar); jobs never print."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class TrainReport:
    """What training gave: ``summary`` (steps, frames, losses, validation numbers, seconds,
    and on rank 0 the checkpoint and its id), what it warned about, and the rank."""

    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    rank: int = 0
    #: joined a torchrun group in this process (and left it when done)
    joined: bool = False

    def end_process(self) -> None:
        """End a rank that joined a torchrun group here, skipping interpreter teardown
        (gloo can abort in its own teardown after a clean exit: see
        :func:`tokquant.distributed.exit_now`). Nothing for a single process."""
        if self.joined:
            from tokquant import distributed

            distributed.exit_now(0)
