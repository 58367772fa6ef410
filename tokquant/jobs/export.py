"""Export a corpus into the files LM trainers read: Parquet, WebDataset tars, fairseq units.

The corpus is read shard by shard (memory: one shard) and every corpus shard becomes one
output file, written atomically by its format's module; ``workers`` processes share the
shards. An export is resumable: ``OUT/.tokquant-export.json`` records what it is (corpus
manifest digest, metadata digest, options), a re-run of the same export skips the files
that exist, and a killed run finishes with the same bytes as an uninterrupted one. A
different export into the same folder is refused unless ``overwrite``.

Before anything is written, every shard passes the corpus' shard check (checksums,
keys, offsets), so a damaged or unmerged corpus is refused whole, not half exported.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant import __version__
from tokquant.errors import FormatError, InputError, OutputError
from tokquant.formats import corpus as corpus_format
from tokquant.formats._atomic import atomic_path, remove_stale_temp_files
from tokquant.formats._digest import file_sha256
from tokquant.jobs.report import NoProgress, Progress, RunReport

if TYPE_CHECKING:
    from tokquant.data.layouts import TokenLayout

FORMATS = ("parquet", "webdataset", "km")
PLAN = ".tokquant-export.json"
#: fairseq's dictionary lists every id: beyond this a km export is surely a mistake.
KM_MAX_VOCAB = 2**24


@dataclass
class ExportOptions:
    to: str
    layout: str = "parallel"
    offsets: bool = False
    dedup: bool = False
    metadata: Path | None = None
    split: str = "train"
    workers: int | None = None
    overwrite: bool = False

    def check(self) -> None:
        from tokquant.data.layouts import LAYOUTS

        if self.to not in FORMATS:
            raise InputError(f"--to must be one of {', '.join(FORMATS)}, found {self.to!r}")
        if self.layout not in LAYOUTS:
            raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, found {self.layout!r}")
        if not self.split or not all(ch.isalnum() or ch in "_-" for ch in self.split):
            raise InputError(f"--split must be letters, digits, '_' or '-', found {self.split!r}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, found {self.workers}")


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


@dataclass
class ExportPlan:
    """An export that passed every check that reads no shard: what :func:`run` does."""

    root: Path
    out: Path
    options: ExportOptions
    manifest: corpus_format.Manifest
    layout: TokenLayout
    info: dict[str, Any]
    targets: list[str]
    metadata: Any  # Metadata | None
    joined: dict[str, Any]


def plan(root: Path, out: Path, options: ExportOptions) -> ExportPlan:
    """Check the options, the corpus manifest, the metadata and the output folder, and
    write nothing; a refusal raises a one-line TokquantError."""
    from tokquant.data.layouts import TokenLayout

    options.check()
    root, out = Path(root), Path(out)
    manifest = open_for_export(root)
    layout = TokenLayout(tuple(manifest.cardinalities), options.layout, options.offsets,
                         options.dedup)  # fmt: skip
    _check_format(manifest, layout, options)
    metadata, joined = _join_metadata(manifest, options.metadata)
    info = _info(root, manifest, layout, options)
    _check_out(out, info, options.overwrite)
    return ExportPlan(root, out, options, manifest, layout, info, _targets(manifest, options),
                      metadata, joined)  # fmt: skip


def run(plan: ExportPlan, *, progress: Progress | None = None) -> RunReport:
    """Check every shard, then export those not done yet; returns the run's report."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    p, options = plan, plan.options
    _check_shards(p.root, p.manifest, options.workers, progress)
    _claim(p.out, p.info, options.overwrite, keep=[*p.targets, *_finals(options)])
    columns = p.metadata.columns if p.metadata else {}
    shards = [
        _Shard(str(p.root), _header(p.manifest), record, str(p.out / target), options.to,
               p.layout, p.info, columns,
               [p.metadata.row(e.key) for e in record.entries] if p.metadata else [])
        for record, target in zip(p.manifest.shards, p.targets, strict=True)
    ]  # fmt: skip
    todo = [] if _finished(p.out, options) else [
        s for s in shards if options.overwrite or not Path(s.target).exists()]  # fmt: skip
    progress.start("export", sum(len(s.record.entries) for s in todo))
    for shard in _map(export_shard, todo, options.workers):
        progress.advance(len(shard.record.entries))
    _finish(p.out, p.layout, options, p.info, p.targets, columns)
    report = RunReport(done=len(todo), skipped=len(shards) - len(todo))
    report.frames = p.info["frames"]
    report.seconds = time.perf_counter() - started
    report.extra = {**p.joined, "utterances": p.info["utterances"],
                    "vocab_size": p.layout.vocab_size, "pad_id": p.layout.pad_id,
                    "bytes": _size(p.out), "encode_failures": len(p.manifest.failures)}  # fmt: skip
    return report


def export(
    root: Path, out: Path, options: ExportOptions, *, progress: Progress | None = None
) -> RunReport:
    """Export corpus ``root`` into ``out`` (:func:`plan`, then :func:`run`).

    Example:
        >>> export(Path("tokens"), Path("tokens-hf"), ExportOptions(to="parquet", offsets=True))
    """
    return run(plan(root, out, options), progress=progress)


def open_for_export(root: Path) -> corpus_format.Manifest:
    """The corpus' manifest; refuses a folder whose ranks were never merged."""
    root = Path(root)
    if not corpus_format.is_corpus(root):
        if root.is_dir() and any(root.glob("manifest.rank*.json")):
            raise InputError(f"{root}: an unmerged corpus (rank manifests only); run "
                             f"`tokquant merge {root}` once every rank has finished")  # fmt: skip
        raise InputError(f"{root}: not a corpus folder (no {corpus_format.MANIFEST})")
    return corpus_format.Manifest.read(root / corpus_format.MANIFEST)


def _check_format(manifest: corpus_format.Manifest, layout: Any, options: ExportOptions) -> None:
    if options.to == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InputError("--to parquet needs pyarrow: pip install 'tokquant[export]'")
    if options.to != "km":
        return
    from tokquant.formats.km import line_problem

    if layout.layout == "parallel" and layout.num_columns > 1:
        raise InputError(f"km holds one unit per position, and these codes have "
                         f"{layout.num_columns} columns: use --layout interleave or delay")  # fmt: skip
    if layout.vocab_size > KM_MAX_VOCAB:
        raise InputError(f"km lists every id in dict.km.txt, and this vocabulary has "
                         f"{layout.vocab_size} (at most {KM_MAX_VOCAB}): use another format")  # fmt: skip
    if options.metadata is not None:
        raise InputError("km has no place for --metadata columns: use parquet or webdataset")
    for _, _, entry in manifest.entries():
        problem = line_problem(entry.key)
        if problem is not None:
            raise InputError(problem)


def _join_metadata(
    manifest: corpus_format.Manifest, path: Path | None
) -> tuple[Any, dict[str, Any]]:
    if path is None:
        return None, {}
    from tokquant.formats.metadata import read_metadata

    metadata = read_metadata(path)
    keys = [e.key for _, _, e in manifest.entries()]
    in_corpus = set(keys)
    missing = [k for k in keys if k not in metadata.rows]
    unknown = sorted(k for k in metadata.rows if k not in in_corpus)
    return metadata, {
        "metadata_columns": list(metadata.columns),
        "metadata_joined": len(keys) - len(missing),
        "metadata_missing": len(missing),
        "metadata_missing_keys": missing[:5],
        "metadata_unknown": len(unknown),
        "metadata_unknown_keys": unknown[:5],
    }


def _info(root: Path, manifest: corpus_format.Manifest, layout: Any,
          options: ExportOptions) -> dict[str, Any]:  # fmt: skip
    """What the export is: recorded in the plan file, the card and Parquet's schema."""
    meta_digest = None if options.metadata is None else file_sha256(options.metadata)
    return {
        "format": options.to,
        "tokquant": __version__,
        "corpus_manifest_sha256": file_sha256(root / corpus_format.MANIFEST),
        "metadata_sha256": meta_digest,
        "checkpoint_id": manifest.checkpoint_id,
        "frame_rate": manifest.frame_rate,
        "cardinalities": list(layout.cardinalities),
        "layout": layout.layout,
        "offsets": layout.offsets,
        "column_offsets": layout.column_offsets.tolist(),
        "dedup": layout.dedup,
        "vocab_size": layout.vocab_size,
        "pad_id": layout.pad_id,
        "dtype": layout.dtype.name,
        "split": options.split,
        "utterances": sum(len(s.entries) for s in manifest.shards),
        "frames": sum(s.frames for s in manifest.shards),
    }


def _targets(manifest: corpus_format.Manifest, options: ExportOptions) -> list[str]:
    n, split = len(manifest.shards), options.split
    if options.to == "parquet":
        return [f"data/{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    if options.to == "webdataset":
        return [f"{split}-{i:05d}.tar" for i in range(n)]
    return [f"parts/{split}-{i:05d}.counts.npy" for i in range(n)]


def _finals(options: ExportOptions) -> list[str]:
    if options.to != "km":
        return ["README.md"]
    from tokquant.formats import km

    return ["README.md", km.DICT, *km.output_names(options.split)]


def _check_out(out: Path, info: dict[str, Any], overwrite: bool) -> None:
    """``out`` must be new, empty, or hold this same export (a resume)."""
    plan_file = out / PLAN
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if plan_file.is_file():
        try:
            same = json.loads(plan_file.read_text()) == info
        except (OSError, ValueError):
            same = False
        if not same and not overwrite:
            raise OutputError(f"{out}: holds another export (other corpus, metadata or "
                              f"options); --overwrite to replace it")  # fmt: skip
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: is not empty and holds no tokquant export; "
                          f"choose an empty folder or --overwrite")  # fmt: skip


def _claim(out: Path, info: dict[str, Any], overwrite: bool, keep: list[str]) -> None:
    """Make ``out`` this export's folder (checked by :func:`_check_out`)."""
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _remove_other_outputs(out, set(keep))
    for folder in (out, out / "data", out / "parts"):
        remove_stale_temp_files(folder)
    with atomic_path(out / PLAN) as tmp:
        tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")


def _remove_other_outputs(out: Path, keep: set[str]) -> None:
    """With overwrite: what an earlier export left that this one will not write."""
    patterns = ("data/*.parquet", "*.tar", "parts/*", "*.km", "*.keys", "*.durations",
                "dict.km.txt", "README.md")  # fmt: skip
    for pattern in patterns:
        for path in out.glob(pattern):
            if path.relative_to(out).as_posix() not in keep and path.is_file():
                path.unlink()


def _check_shards(root: Path, manifest: corpus_format.Manifest, workers: int | None,
                  progress: Progress) -> None:  # fmt: skip
    progress.start("check", len(manifest.shards))
    header = _header(manifest)
    tasks = [(str(root), header, record) for record in manifest.shards]
    problems: list[str] = []
    for problem in _map(_check_one, tasks, workers):
        progress.advance()
        if problem:
            problems.append(problem)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FormatError(f"{root}: fails its check: {problems[0]}{more}; "
                          f"see `tokquant verify {root}`")  # fmt: skip


def _check_one(task: tuple[str, corpus_format.Manifest, corpus_format.ShardRecord]) -> str:
    root, header, record = task
    try:
        corpus_format.open_shard(Path(root), record, header, where=record.file)
    except FormatError as exc:
        return str(exc)
    return ""


def _header(manifest: corpus_format.Manifest) -> corpus_format.Manifest:
    return corpus_format.Manifest(manifest.checkpoint_id, manifest.quantizer, manifest.columns,
                                  manifest.frame_rate)  # fmt: skip


def _map(fn: Callable[[Any], Any], tasks: list[Any], workers: int | None) -> Iterator[Any]:
    """``fn`` over ``tasks`` in worker processes (results in order of completion), or
    inline when one worker would do."""
    count = min(workers or min(os.cpu_count() or 1, 8), len(tasks))
    if count <= 1:
        yield from map(fn, tasks)
        return
    context = multiprocessing.get_context("spawn")  # the parent may hold threads (progress)
    with concurrent.futures.ProcessPoolExecutor(count, mp_context=context) as pool:
        futures = [pool.submit(fn, task) for task in tasks]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def export_shard(shard: _Shard) -> _Shard:
    """Read one corpus shard, lay its codes out, write its output file."""
    from tokquant.formats._export_rows import ExportRows

    opened = corpus_format.open_shard(Path(shard.root), shard.record, shard.header,
                                      where=shard.record.file)  # fmt: skip
    layout = shard.layout
    codes = opened.read_all(shard.header.cardinalities)
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
    from tokquant.formats.parquet import write_parquet

    write_parquet(path, rows)


def _write_tar(path: Path, rows: Any) -> None:
    from tokquant.formats.webdataset import write_tar

    write_tar(path, rows)


def _write_km_part(path: Path, rows: Any) -> None:
    from tokquant.formats.km import write_part

    write_part(path, rows)


_WRITERS = {"parquet": _write_parquet, "webdataset": _write_tar, "km": _write_km_part}


def _finished(out: Path, options: ExportOptions) -> bool:
    """A km export whose parts were joined and removed (the others: per file)."""
    if options.to != "km" or options.overwrite or (out / "parts").exists():
        return False
    from tokquant.formats import km

    names = [km.DICT, *km.output_names(options.split, options.dedup)]
    return all((out / name).exists() for name in names)


def _finish(out: Path, layout: Any, options: ExportOptions, info: dict[str, Any],
            targets: list[str], metadata_columns: dict[str, str]) -> None:  # fmt: skip
    from tokquant.formats.dataset_card import write_card

    if options.to == "km":
        from tokquant.formats import km

        parts = [out / t for t in targets]
        if not (out / km.DICT).exists() or any(p.exists() for p in parts):
            km.assemble(parts, out, options.split, layout.vocab_size, layout.dedup)
            shutil.rmtree(out / "parts", ignore_errors=True)
    data_files = {"parquet": f"data/{options.split}-*.parquet",
                  "webdataset": f"{options.split}-*.tar"}.get(options.to)  # fmt: skip
    write_card(out / "README.md", info, columns=_columns(layout, options, metadata_columns),
               data_files=data_files, last_shard=len(targets) - 1)  # fmt: skip


def _columns(layout: Any, options: ExportOptions,
             metadata_columns: dict[str, str]) -> list[tuple[str, str, str]]:  # fmt: skip
    from tokquant.data.layouts import LAYOUT_SHAPES

    rows = [("key", "string", "corpus key (the input's path without extension)"),
            ("codes", f"{layout.dtype.name} {LAYOUT_SHAPES[layout.layout]}", "token ids"),
            ("num_frames", "int64", "frames of the utterance before dedup")]  # fmt: skip
    if layout.dedup:
        rows.append(("durations", "uint32 [T]", "frames each deduplicated frame stands for"))
    source = options.metadata.name if options.metadata else ""
    rows.extend((name, kind, f"from {source}") for name, kind in metadata_columns.items())
    return rows


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
