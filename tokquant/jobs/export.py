"""The export job's request: a corpus into the files LM trainers read (Parquet,
WebDataset tars, fairseq units), resumable; the work is :mod:`tokquant.runners.export`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.errors import InputError
from tokquant.jobs.report import ExportReport, Progress
from tokquant.jobs.request import Request


@dataclass(kw_only=True)
class ExportOptions(Request):
    """How a corpus is exported: its format (``to``), the token layout, offsets, dedup,
    a metadata table to join, the split's name, worker processes, and ``overwrite``."""

    to: str
    layout: str = "parallel"
    offsets: bool = False
    dedup: bool = False
    #: a Parquet/CSV/JSONL table keyed by utterance, joined as extra columns
    metadata: str | Path | None = None
    split: str = "train"
    #: worker processes (None: the CPUs this process may use)
    workers: int | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.split or not all(ch.isalnum() or ch in "_-" for ch in self.split):
            raise InputError(f"`split` must be letters, digits, '_' or '-', found {self.split!r}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"`workers` must be at least 1, found {self.workers}")
        if self.metadata is not None:
            self.metadata = Path(self.metadata)


@dataclass
class ExportJob(ExportOptions):
    """``tokquant export``: a corpus into the files LM trainers read (Parquet, WebDataset
    tars, fairseq km), resumable; several splits may share ``out``.

    Example:
        >>> ExportJob("tokens/", "tokens-hf", to="parquet", layout="delay", offsets=True).run()
    """

    corpus: str | Path
    out: str | Path

    def run(self, progress: Progress | None = None) -> ExportReport:
        """Export; the report holds the vocabulary, pad id, bytes written, utterances,
        encode failures and (with ``metadata``) what was joined."""
        # start-up time: numpy
        from tokquant.runners.export.run import export

        return export(Path(self.corpus), Path(self.out), self, progress=progress)
