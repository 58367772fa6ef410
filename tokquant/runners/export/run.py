"""Running a planned export: the corpus check, then each shard not done yet written by a
worker process through its format's writer, then the split's joined files and the card."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.data.layouts import LAYOUT_SHAPES
from tokquant.errors import FormatError
from tokquant.formats import corpus as corpus_format
from tokquant.formats import km
from tokquant.formats._export_rows import ExportRows
from tokquant.formats.dataset_card import write_card
from tokquant.formats.km import write_part
from tokquant.formats.parquet import write_parquet
from tokquant.formats.webdataset import write_tar
from tokquant.jobs.report import ExportReport, NoProgress, Progress
from tokquant.runners.export.folder import LOCK, busy, check_out, claim, recorded_splits
from tokquant.runners.export.plan import ExportPlan, plan, written
from tokquant.runners.export.pool import map_shards
from tokquant.storage.folder import OutputFolder

if TYPE_CHECKING:
    from tokquant.data.layouts import TokenLayout
    from tokquant.jobs.export import ExportOptions


@dataclass
class _Shard:
    """One unit of work, small enough to send to a worker process."""

    root: str
    header: corpus_format.Manifest  # the manifest without its shard list
    record: corpus_format.ShardRecord
    target: str
    to: str
    layout: TokenLayout
    info: dict[str, Any]
    metadata_columns: dict[str, str] = field(default_factory=dict)
    metadata: list[dict[str, Any]] = field(default_factory=list)


def run(plan: ExportPlan, *, progress: Progress | None = None) -> ExportReport:
    """Check the whole corpus, then export the shards not done yet; returns the report.
    Holds the output folder's lock throughout (a second export into it is refused)."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    p, options = plan, plan.options
    _check_corpus(p.root, p.manifest, options.workers, progress)
    with OutputFolder(p.out).hold(LOCK, busy(p.out)) as folder:
        check_out(p.out, p.info, options.overwrite)  # again: the folder is ours only now
        finished = _finished(p.out, options)
        claim(folder, p.info, options.overwrite, p.outputs)
        todo = (
            []
            if finished
            else [
                (record, target)
                for record, target in p.targets
                if options.overwrite or not written(p.out / target, options)
            ]
        )
        columns = p.metadata.columns if p.metadata else {}
        shards = [
            _Shard(
                str(p.root),
                _header(p.manifest),
                record,
                str(p.out / target),
                options.to,
                p.layout,
                p.info,
                columns,
                [p.metadata.row(e.key) for e in record.entries] if p.metadata else [],
            )
            for record, target in todo
        ]
        progress.start("export", sum(len(s.record.entries) for s in shards))
        for shard in map_shards(export_shard, shards, options.workers):
            progress.advance(len(shard.record.entries))
        _finish(
            p.out,
            p.layout,
            options,
            p.info,
            [t for _, t in p.targets],
            columns,
            assemble=not finished,
            positions=[r.positions for r, _ in p.targets],
        )
    report = ExportReport(
        done=len(todo),
        skipped=len(p.targets) - len(todo),
        frames=p.info["frames"],
        utterances=p.info["utterances"],
        vocab_size=p.layout.vocab_size,
        pad_id=p.layout.pad_id,
        bytes=_size(p.out),
        encode_failures=len(p.manifest.failures),
        **p.joined,
    )
    report.seconds = time.perf_counter() - started
    return report


def _check_corpus(
    root: Path, manifest: corpus_format.Manifest, workers: int | None, progress: Progress
) -> None:
    """``verify``'s check, shards in parallel; any problem refuses the export whole."""
    problems = corpus_format.manifest_problems(manifest)
    progress.start("check", len(manifest.shards))
    header = _header(manifest)
    tasks = [(str(root), header, record) for record in manifest.shards]
    for found in map_shards(_check_one, tasks, workers):
        progress.advance()
        problems += found
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FormatError(
            f"{root}: fails its check: {problems[0]}{more}; see `tokquant verify {root}`"
        )


def _check_one(task: tuple[str, corpus_format.Manifest, corpus_format.ShardRecord]) -> list[str]:
    root, header, record = task
    return corpus_format.shard_problems(Path(root), record, header)


def _header(manifest: corpus_format.Manifest) -> corpus_format.Manifest:
    return corpus_format.Manifest(
        manifest.checkpoint_id, manifest.quantizer, manifest.columns, manifest.frame_rate
    )


def export_shard(shard: _Shard) -> _Shard:
    """Read one corpus shard, lay its codes out, write its output file."""
    opened = corpus_format.open_shard(
        Path(shard.root), shard.record, shard.header, where=shard.record.file
    )
    layout = shard.layout
    try:
        codes = opened.read_all(shard.header.cardinalities)
    finally:
        opened.close()
    frames = opened.offsets[1:] - opened.offsets[:-1]
    rows = ExportRows(
        keys=[e.key for e in shard.record.entries],
        tokens=layout.apply(codes, opened.offsets),
        num_frames=frames,
        metadata=shard.metadata or [{} for _ in shard.record.entries],
        layout=layout,
        info=shard.info,
        metadata_columns=shard.metadata_columns,
    )
    _WRITERS[shard.to](Path(shard.target), rows)
    return shard


def _write_parquet(path: Path, rows: Any) -> None:
    write_parquet(path, rows)


def _write_tar(path: Path, rows: Any) -> None:
    write_tar(path, rows)


def _write_km_part(path: Path, rows: Any) -> None:
    write_part(path, rows)


_WRITERS = {"parquet": _write_parquet, "webdataset": _write_tar, "km": _write_km_part}


def _finished(out: Path, options: ExportOptions) -> bool:
    """A km export whose parts were joined (its dictionary, written last, is there); the
    other formats are done file by file."""
    if options.to != "km" or options.overwrite:
        return False

    names = [km.DICT, *km.output_names(options.split, options.dedup)]
    return all((out / name).exists() for name in names)


def _finish(
    out: Path,
    layout: Any,
    options: ExportOptions,
    info: dict[str, Any],
    targets: list[str],
    metadata_columns: dict[str, str],
    *,
    assemble: bool,
    positions: list[list[int] | None],
) -> None:
    if options.to == "km":
        if assemble:
            km.assemble(
                [out / t for t in targets],
                out,
                options.split,
                layout.vocab_size,
                layout.dedup,
                positions,
            )
        for part in (out / "parts").glob(f"{options.split}-*"):  # joined: spent
            part.unlink()
        with contextlib.suppress(OSError):
            (out / "parts").rmdir()  # another split's parts (a killed export) stay
    pattern = {"parquet": "data/{}-*.parquet", "webdataset": "{}-*.tar"}.get(options.to)
    splits = sorted(recorded_splits(out))
    data_files = None if pattern is None else {s: pattern.format(s) for s in splits}
    write_card(
        out / "README.md",
        info,
        columns=_columns(layout, options, metadata_columns),
        data_files=data_files,
        last_shard=len(targets) - 1,
    )


def _columns(
    layout: Any, options: ExportOptions, metadata_columns: dict[str, str]
) -> list[tuple[str, str, str]]:
    rows = [
        ("key", "string", "corpus key (the input's path without extension)"),
        ("codes", f"{layout.dtype.name} {LAYOUT_SHAPES[layout.layout]}", "token ids"),
        ("num_frames", "int64", "frames of the utterance before dedup"),
    ]
    if layout.dedup:
        rows.append(("durations", "uint32 [T]", "frames each deduplicated frame stands for"))
    source = options.metadata.name if options.metadata else ""
    rows.extend((name, kind, f"from {source}") for name, kind in metadata_columns.items())
    return rows


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def export(
    root: Path, out: Path, options: ExportOptions, *, progress: Progress | None = None
) -> ExportReport:
    """Export corpus ``root`` into ``out`` (:func:`~.plan.plan`, then :func:`run`)."""
    return run(plan(root, out, options), progress=progress)
