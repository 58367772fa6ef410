"""What a job returns: a :class:`RunReport` (counts of a run over many inputs), or a
report of its own kind that extends it with typed fields (:class:`EncodeReport`,
:class:`ExportReport`) rather than a dict of strings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class RunReport:
    """Counts of a run over many inputs.

    A failing input never stops the others: its one-line reason is kept in ``failures``
    and the command exits 1 after finishing everything else. A kind of job that has more
    to say subclasses it; :meth:`own_fields` is what the subclass adds, for its JSON.
    """

    done: int = 0
    skipped: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    #: Numbers a job adds to its summary table and its JSON alike (encode: tokens, bits).
    columns: dict[str, Any] = field(default_factory=dict)

    def own_fields(self) -> dict[str, Any]:
        """The fields a subclass adds, in their order (its JSON summary's last keys)."""
        base = {f.name for f in dataclasses.fields(RunReport)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in base}  # fmt: skip


@dataclass
class EncodeReport(RunReport):
    """An encode's counts, its rank, and where it ran: ``shards_*`` with a corpus,
    ``engine`` to ``task_seconds`` on Ray (None where they do not apply, and then left
    out of the JSON)."""

    rank: int = 0
    world_size: int = 1
    engine: str | None = None
    tasks: int | None = None
    actors: int | None = None
    shards_written: int | None = None
    shards_resumed: int | None = None
    #: Ray: the seconds its tasks ran, summed over actors
    task_seconds: float | None = None

    def own_fields(self) -> dict[str, Any]:
        return {k: v for k, v in super().own_fields().items() if v is not None}


@dataclass
class ExportReport(RunReport):
    """An export's counts and what it wrote: utterances, the vocabulary and its pad id,
    bytes, the utterances that had failed at encode, and with ``metadata`` what joined
    (``metadata_*``: None without metadata, and then left out of the JSON)."""

    utterances: int = 0
    vocab_size: int = 0
    pad_id: int | None = None
    bytes: int = 0
    encode_failures: int = 0
    metadata_columns: list[str] | None = None
    metadata_joined: int | None = None
    metadata_missing: int | None = None
    metadata_missing_keys: list[str] | None = None
    metadata_unknown: int | None = None
    metadata_unknown_keys: list[str] | None = None

    def own_fields(self) -> dict[str, Any]:
        fields = super().own_fields()
        joined = {k: fields.pop(k) for k in list(fields) if k.startswith("metadata_")}
        return {**{k: v for k, v in joined.items() if v is not None}, **fields}


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
            # start-up time: torch
            from tokquant import distributed

            distributed.exit_now(0)


@dataclass
class EvalReport:
    """``rows``: per file, its key, seconds and scores; ``overall``: each score's mean
    over the files that have it; ``missing``: one line per score whose package is not
    installed; ``reference``: the original audio's own DNSMOS (the ceiling)."""

    decoder: str
    rows: list[dict[str, Any]]
    overall: dict[str, float]
    reference: dict[str, float]
    bitrate_kbps: float
    entropy_kbps: float
    missing: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CompareReport:
    """``systems``: per tokenizer its name, checkpoint, decoder, bitrates, each score's
    mean (``overall``), encode and decode speed (x real time) and its files' rows, as
    ``eval`` reports them; ``reference``: the original audio's own DNSMOS (the ceiling);
    ``page``: the listening page, where one was written."""

    systems: list[dict[str, Any]]
    reference: dict[str, float]
    audio_seconds: float
    missing: list[str] = field(default_factory=list)
    page: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
