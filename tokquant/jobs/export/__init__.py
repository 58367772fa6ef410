"""Export a corpus into the files LM trainers read: Parquet, WebDataset tars, fairseq units.

The corpus is read shard by shard (memory: one shard) and every corpus shard becomes one
output file, written atomically by its format's module; ``workers`` processes share the
shards. An export is resumable: ``OUT/.tokquant-export.json`` records what each split's
export is (corpus manifest digest, metadata digest, options) and the files it wrote
(:mod:`.folder`), a re-run of the same export skips the files that exist, and a killed run
finishes with the same bytes as an uninterrupted one. Another split sharing the format and
options is added beside the others; a different export of a split is refused unless
``overwrite``.

:mod:`.plan` checks everything that reads no shard and says what will be written;
:mod:`.run` checks the corpus and writes, shards spread over :mod:`.pool`'s processes,
each through its format's writer (``tokquant.formats.parquet``, ``.webdataset``, ``.km``).

Before anything is written, the corpus passes ``verify``'s own check (manifest, checksums,
keys, offsets, every code in range), so a damaged or unmerged corpus is refused whole, not
half exported. One export writes into a folder at a time (a lock in it; a second is
refused), ``--overwrite`` deletes only what the recorded export wrote (a folder that holds
no export is never emptied), and a shard whose every utterance failed at encode writes no
file (an empty Parquet file breaks ``load_dataset`` on the whole export).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.jobs.export.folder import LOCK, PLAN
from tokquant.jobs.export.plan import FORMATS, ExportOptions, ExportPlan, open_for_export, plan
from tokquant.jobs.export.run import export_shard, run
from tokquant.jobs.report import ExportReport, Progress
from tokquant.jobs.request import Request

__all__ = [
    "FORMATS",
    "LOCK",
    "PLAN",
    "ExportJob",
    "ExportOptions",
    "ExportPlan",
    "export",
    "export_shard",
    "open_for_export",
    "plan",
    "run",
]


@dataclass
class ExportJob(Request):
    """``tokquant export``: a corpus into the files LM trainers read (Parquet, WebDataset
    tars, fairseq km), resumable; several splits may share ``out``.

    Example:
        >>> ExportJob("tokens/", "tokens-hf", to="parquet", layout="delay", offsets=True).run()
    """

    corpus: str | Path
    out: str | Path
    to: str
    layout: str = "parallel"
    offsets: bool = False
    dedup: bool = False
    metadata: str | Path | None = None
    split: str = "train"
    workers: int | None = None
    overwrite: bool = False

    def run(self, progress: Progress | None = None) -> ExportReport:
        """Export; the report holds the vocabulary, pad id, bytes written,
        utterances, encode failures and (with ``metadata``) what was joined."""
        options = ExportOptions(
            to=self.to,
            layout=self.layout,
            offsets=self.offsets,
            dedup=self.dedup,
            metadata=None if self.metadata is None else Path(self.metadata),
            split=self.split,
            workers=self.workers,
            overwrite=self.overwrite,
        )
        return run(plan(Path(self.corpus), Path(self.out), options), progress=progress)


def export(
    root: Path, out: Path, options: ExportOptions, *, progress: Progress | None = None
) -> ExportReport:
    """Export corpus ``root`` into ``out`` (:func:`plan`, then :func:`run`).

    Example:
        >>> export(Path("tokens"), Path("tokens-hf"), ExportOptions(to="parquet", offsets=True))
    """
    return run(plan(root, out, options), progress=progress)
