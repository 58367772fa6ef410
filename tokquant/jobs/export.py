"""Export a corpus into the files LM trainers read: Parquet, WebDataset tars, fairseq units.

The corpus is read shard by shard (memory: one shard) and every corpus shard becomes one
output file, written atomically by its format's module; ``workers`` processes share the
shards. An export is resumable: ``OUT/.tokquant-export.json`` records what it is (corpus
manifest digest, metadata digest, options), a re-run of the same export skips the files
that exist, and a killed run finishes with the same bytes as an uninterrupted one. A
different export into the same folder is refused unless ``overwrite``.

Before anything is written, the corpus passes ``verify``'s own check (manifest, checksums,
keys, offsets, every code in range), so a damaged or unmerged corpus is refused whole, not
half exported. One export writes into a folder at a time (a lock in it; a second is
refused), ``--overwrite`` deletes only what the recorded export wrote (a folder that holds
no export is never emptied), and a shard whose every utterance failed at encode writes no
file (an empty Parquet file breaks ``load_dataset`` on the whole export).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant import __version__
from tokquant.choices import EXPORT_FORMATS
from tokquant.errors import FormatError, InputError, OutputError
from tokquant.formats import corpus as corpus_format
from tokquant.jobs.report import NoProgress, Progress, RunReport
from tokquant.jobs.targets import check_output_dir, ensure_output_dir
from tokquant.storage.atomic import atomic_path, remove_stale_temp_files
from tokquant.storage.digest import file_sha256
from tokquant.storage.lock import exclusive
from tokquant.storage.safe_json import loads as json_loads

if TYPE_CHECKING:
    from tokquant.data.layouts import TokenLayout

FORMATS = EXPORT_FORMATS
PLAN = ".tokquant-export.json"
LOCK = ".tokquant-export.lock"
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
    #: ``(shard, output file)`` of every shard that holds an utterance.
    targets: list[tuple[corpus_format.ShardRecord, str]]
    metadata: Any  # Metadata | None
    joined: dict[str, Any]

    @property
    def outputs(self) -> list[str]:
        """Every file this export writes, relative to ``out``."""
        return _outputs(self.options, [t for _, t in self.targets])


def plan(root: Path, out: Path, options: ExportOptions) -> ExportPlan:
    """Check the options, the corpus manifest, the metadata and the output folder, and
    write nothing; a refusal raises a one-line TokquantError."""
    from tokquant.data.layouts import TokenLayout

    options.check()
    root, out = Path(root), Path(out)
    manifest = open_for_export(root)
    try:
        layout = TokenLayout(tuple(manifest.cardinalities), options.layout, options.offsets,
                             options.dedup)  # fmt: skip
    except ValueError as exc:  # a flat vocabulary beyond 64 bits
        raise InputError(f"{root}: {exc}; export without --offsets") from None
    _check_format(manifest, layout, options)
    metadata, joined = _join_metadata(manifest, options.metadata)
    info = _info(root, manifest, layout, options)
    _check_out(out, info, options.overwrite)
    return ExportPlan(root, out, options, manifest, layout, info, _targets(manifest, options),
                      metadata, joined)  # fmt: skip


def run(plan: ExportPlan, *, progress: Progress | None = None) -> RunReport:
    """Check the whole corpus, then export the shards not done yet; returns the report.
    Holds the output folder's lock throughout (a second export into it is refused)."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    p, options = plan, plan.options
    _check_corpus(p.root, p.manifest, options.workers, progress)
    ensure_output_dir(p.out)
    with exclusive(p.out / LOCK, _busy(p.out)):
        _check_out(p.out, p.info, options.overwrite)  # again: the folder is ours only now
        finished = _finished(p.out, options)
        _claim(p.out, p.info, options.overwrite, p.outputs)
        todo = [] if finished else [
            (record, target) for record, target in p.targets
            if options.overwrite or not _written(p.out / target, options)]  # fmt: skip
        columns = p.metadata.columns if p.metadata else {}
        shards = [
            _Shard(str(p.root), _header(p.manifest), record, str(p.out / target), options.to,
                   p.layout, p.info, columns,
                   [p.metadata.row(e.key) for e in record.entries] if p.metadata else [])
            for record, target in todo
        ]  # fmt: skip
        progress.start("export", sum(len(s.record.entries) for s in shards))
        for shard in _map(export_shard, shards, options.workers):
            progress.advance(len(shard.record.entries))
        _finish(p.out, p.layout, options, p.info, [t for _, t in p.targets], columns,
                assemble=not finished, positions=[r.positions for r, _ in p.targets])  # fmt: skip
    report = RunReport(done=len(todo), skipped=len(p.targets) - len(todo))
    report.frames = p.info["frames"]
    report.seconds = time.perf_counter() - started
    report.extra = {**p.joined, "utterances": p.info["utterances"],
                    "vocab_size": p.layout.vocab_size, "pad_id": p.layout.pad_id,
                    "bytes": _size(p.out), "encode_failures": len(p.manifest.failures)}  # fmt: skip
    return report


@dataclass
class ExportJob:
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

    def run(self, progress: Progress | None = None) -> RunReport:
        """Export; the report's ``extra`` holds the vocabulary, pad id, bytes written,
        utterances, encode failures and (with ``metadata``) what was joined."""
        options = ExportOptions(to=self.to, layout=self.layout, offsets=self.offsets,
                                dedup=self.dedup,
                                metadata=None if self.metadata is None else Path(self.metadata),
                                split=self.split, workers=self.workers,
                                overwrite=self.overwrite)  # fmt: skip
        return run(plan(Path(self.corpus), Path(self.out), options), progress=progress)


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


def _targets(manifest: corpus_format.Manifest,
             options: ExportOptions) -> list[tuple[corpus_format.ShardRecord, str]]:  # fmt: skip
    """An output file per shard that holds an utterance, numbered over those shards."""
    records = [record for record in manifest.shards if record.entries]
    if not records:
        raise InputError("the corpus holds no utterances (every input failed at encode: "
                         "see its manifest's failures); nothing to export")  # fmt: skip
    n, split = len(records), options.split
    if options.to == "parquet":
        names = [f"data/{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    elif options.to == "webdataset":
        names = [f"{split}-{i:05d}.tar" for i in range(n)]
    else:
        names = [f"parts/{split}-{i:05d}.counts.npy" for i in range(n)]
    return list(zip(records, names, strict=True))


def _outputs(options: ExportOptions, targets: list[str]) -> list[str]:
    """Every file an export writes: its shard files (with a km part's text files), the
    card, and km's joined files."""
    files = ["README.md", *targets]
    if options.to == "km":
        from tokquant.formats import km

        for target in targets:
            files += [f"parts/{p.name}" for p in km.part_files(Path(target))]
        files += [km.DICT, *km.output_names(options.split)]
    return files


def _written(target: Path, options: ExportOptions) -> bool:
    """An output a killed run finished (a km part: its counts file and its text files)."""
    if options.to != "km":
        return target.exists()
    from tokquant.formats import km

    return target.exists() and all(p.exists() for p in km.part_files(target)[:2])


def _check_out(out: Path, info: dict[str, Any], overwrite: bool) -> None:
    """``out`` must be new, empty, or hold tokquant exports: of this split, this same
    export (a resume) or, with ``overwrite``, another one; of other splits, ones that
    share this export's format and options (they are kept), or with ``overwrite`` any
    (their files are removed too; without it, the refusal says that they would be)."""
    check_output_dir(out)
    for folder in ("data", "parts"):  # an export writes into these: never through a link
        if (out / folder).is_symlink():
            raise OutputError(f"{out / folder}: is a symbolic link; tokquant writes into real "
                              f"folders only (remove it)")  # fmt: skip
    if (out / PLAN).is_file():
        splits = _recorded_splits(out)
        split = info["split"]
        if overwrite:
            return
        if not splits:
            raise OutputError(f"{out}: holds an export whose record cannot be read; "
                              f"--overwrite to replace it")  # fmt: skip
        if split in splits and splits[split].get("info") != info:
            raise OutputError(f"{out}: holds another export of split {split!r} (other corpus, "
                              f"metadata or options); --overwrite to replace it")  # fmt: skip
        clash = _clashing(splits, info)
        if clash:
            raise OutputError(
                f"{out}: holds split(s) {', '.join(clash)} exported in another format or with "
                f"other options (the splits of one folder share them); --overwrite would "
                f"delete their files too"
            )
    elif out.is_dir() and any(e.name != LOCK for e in os.scandir(out)):
        if (out / LOCK).exists():  # an export is writing its first files right now
            raise OutputError(_busy(out))
        raise OutputError(f"{out}: is not empty and holds no tokquant export; choose an empty "
                          f"folder (--overwrite replaces only an earlier export)")  # fmt: skip


#: What may differ between the splits of one export folder; all else they share.
_PER_SPLIT = ("split", "corpus_manifest_sha256", "metadata_sha256", "utterances", "frames",
              "tokquant")  # fmt: skip


def _shared(info: Any) -> dict[str, Any]:
    return {k: v for k, v in (info if isinstance(info, dict) else {}).items()
            if k not in _PER_SPLIT}  # fmt: skip


def _clashing(splits: dict[str, dict[str, Any]], info: dict[str, Any]) -> list[str]:
    """Other splits recorded in the folder that this export cannot stand beside."""
    return sorted(s for s, r in splits.items()
                  if s != info["split"] and _shared(r.get("info")) != _shared(info))  # fmt: skip


def _busy(out: Path) -> str:
    return f"{out}: another tokquant export is writing into this folder; wait for it to finish"


def _recorded_splits(out: Path) -> dict[str, dict[str, Any]]:
    """The exports a folder records, by split: each its ``info`` and ``outputs`` (the
    files it wrote). Empty for an unreadable record (an export of unknown files)."""
    try:
        data = json_loads((out / PLAN).read_bytes(), str(out / PLAN))
    except (OSError, FormatError):
        return {}
    if not isinstance(data, dict):
        return {}
    if isinstance(data.get("splits"), dict):
        return {k: v for k, v in data["splits"].items() if isinstance(v, dict)}
    if "info" not in data:  # written before outputs were recorded: the plan was the info
        data = {"info": data}
    split = data["info"].get("split") if isinstance(data["info"], dict) else None
    return {split if isinstance(split, str) else "": data}


def _claim(out: Path, info: dict[str, Any], overwrite: bool, outputs: list[str]) -> None:
    """Make ``out`` this export's folder (checked by :func:`_check_out`): with
    ``overwrite``, the files of this split's earlier export and of other splits it
    cannot stand beside are removed (nothing else); the record then holds this split
    beside the splits kept."""
    splits = _recorded_splits(out) if (out / PLAN).is_file() else {}
    if overwrite:
        dropped = {s: r for s, r in splits.items()
                   if s == info["split"] or s in _clashing(splits, info)}  # fmt: skip
        splits = {s: r for s, r in splits.items() if s not in dropped}
        keep = set(outputs).union(*(_outputs_of(out, r) for r in splits.values()))
        for record in dropped.values():
            _remove_outputs(out, _outputs_of(out, record), keep)
    for folder in (out, out / "data", out / "parts"):
        remove_stale_temp_files(folder)
    splits[info["split"]] = {"info": info, "outputs": outputs}
    with atomic_path(out / PLAN) as tmp:
        tmp.write_text(json.dumps({"splits": splits}, indent=1, sort_keys=True) + "\n")


def _outputs_of(out: Path, record: dict[str, Any]) -> list[str]:
    names = record.get("outputs")
    if isinstance(names, list):
        return [n for n in names if isinstance(n, str)]
    info = record.get("info")
    return _legacy_outputs(out, info if isinstance(info, dict) else {})  # an older record


def _remove_outputs(out: Path, names: list[str], keep: set[str]) -> None:
    """Remove the recorded files ``names`` not in ``keep``, and nothing else (a user's
    own files in the folder stay)."""
    for name in names:
        if name in keep:
            continue
        path = out / name
        if path.resolve().parent.is_relative_to(out.resolve()) and path.is_file():
            path.unlink()
    for folder in ("data", "parts"):
        with contextlib.suppress(OSError):
            (out / folder).rmdir()  # only when empty


def _legacy_outputs(out: Path, info: dict[str, Any]) -> list[str]:
    """What an export recorded before outputs were listed wrote, by its format's names."""
    split = info.get("split")
    if not isinstance(split, str) or not split or not all(c.isalnum() or c in "_-" for c in split):
        return []
    patterns = {"parquet": [f"data/{split}-*-of-*.parquet"], "webdataset": [f"{split}-*.tar"],
                "km": [f"parts/{split}-*", f"{split}.km", f"{split}.keys", f"{split}.durations",
                       "dict.km.txt"]}.get(info.get("format"), [])  # fmt: skip
    found = [p.relative_to(out).as_posix() for pattern in patterns for p in out.glob(pattern)]
    return ["README.md", *found]


def _check_corpus(root: Path, manifest: corpus_format.Manifest, workers: int | None,
                  progress: Progress) -> None:  # fmt: skip
    """``verify``'s check, shards in parallel; any problem refuses the export whole."""
    problems = corpus_format.manifest_problems(manifest)
    progress.start("check", len(manifest.shards))
    header = _header(manifest)
    tasks = [(str(root), header, record) for record in manifest.shards]
    for found in _map(_check_one, tasks, workers):
        progress.advance()
        problems += found
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FormatError(f"{root}: fails its check: {problems[0]}{more}; "
                          f"see `tokquant verify {root}`")  # fmt: skip


def _check_one(task: tuple[str, corpus_format.Manifest, corpus_format.ShardRecord]) -> list[str]:
    root, header, record = task
    return corpus_format.shard_problems(Path(root), record, header)


def _header(manifest: corpus_format.Manifest) -> corpus_format.Manifest:
    return corpus_format.Manifest(manifest.checkpoint_id, manifest.quantizer, manifest.columns,
                                  manifest.frame_rate)  # fmt: skip


def _map(fn: Callable[[Any], Any], tasks: list[Any], workers: int | None) -> Iterator[Any]:
    """``fn`` over ``tasks`` in worker processes (results in order of completion), or
    inline when one worker would do.

    Workers start with SIGINT blocked (:func:`_sigint_deferred`): Ctrl-C, which a terminal
    sends to every process of the group, is the parent's to handle, where a worker
    interrupted while Python starts would die with "Fatal Python error: init_import_site".
    Each worker also watches its parent and exits when it is gone, so a SIGKILLed export
    leaves no worker (nor, with them, the resource tracker they keep alive) running."""
    count = min(workers or min(os.cpu_count() or 1, 8), len(tasks))
    if count <= 1:
        yield from map(fn, tasks)
        return
    context = multiprocessing.get_context("spawn")  # the parent may hold threads (progress)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
            count, mp_context=context, initializer=_watch_parent, initargs=(os.getpid(),)))  # fmt: skip
        with _sigint_deferred():  # submit starts the workers (spawn: one per submit)
            futures = [pool.submit(fn, task) for task in tasks]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C held back while workers start: blocked in this thread, and so in the
    processes it starts (a blocked mask survives fork and exec), and only noted by
    Python meanwhile (another thread may take the signal), then acted on at the end.
    Raising half-way through a start would leave a worker reading its start-up data
    from a closed pipe, and printing a traceback."""
    noted: list[int] = []
    try:
        handler = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    except ValueError:  # not the main thread: Python runs no handler here anyway
        handler = None
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
            if noted:
                signal.raise_signal(signal.SIGINT)


def _watch_parent(parent: int) -> None:
    """In a worker: exit as soon as the process that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="tokquant-watch-parent", daemon=True).start()


def export_shard(shard: _Shard) -> _Shard:
    """Read one corpus shard, lay its codes out, write its output file."""
    from tokquant.formats._export_rows import ExportRows

    opened = corpus_format.open_shard(Path(shard.root), shard.record, shard.header,
                                      where=shard.record.file)  # fmt: skip
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
    """A km export whose parts were joined (its dictionary, written last, is there); the
    other formats are done file by file."""
    if options.to != "km" or options.overwrite:
        return False
    from tokquant.formats import km

    names = [km.DICT, *km.output_names(options.split, options.dedup)]
    return all((out / name).exists() for name in names)


def _finish(out: Path, layout: Any, options: ExportOptions, info: dict[str, Any],
            targets: list[str], metadata_columns: dict[str, str], *, assemble: bool,
            positions: list[list[int] | None]) -> None:  # fmt: skip
    from tokquant.formats.dataset_card import write_card

    if options.to == "km":
        from tokquant.formats import km

        if assemble:
            km.assemble([out / t for t in targets], out, options.split, layout.vocab_size,
                        layout.dedup, positions)  # fmt: skip
        for part in (out / "parts").glob(f"{options.split}-*"):  # joined: spent
            part.unlink()
        with contextlib.suppress(OSError):
            (out / "parts").rmdir()  # another split's parts (a killed export) stay
    pattern = {"parquet": "data/{}-*.parquet", "webdataset": "{}-*.tar"}.get(options.to)
    splits = sorted(_recorded_splits(out))
    data_files = None if pattern is None else {s: pattern.format(s) for s in splits}
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
