"""Where an encode's codes go: token files (one per input) or a sharded corpus.

Both outputs take the same :class:`EncodeOptions` and the same stream of encoded items
(:func:`tokquant.runners.batcher.encode_items`); they differ only in where codes go. Token
files are written by one background thread while the next batch is read and encoded
(writing, fsync included, was the largest per-file cost in a profile). A corpus is
written by a :class:`~tokquant.formats.corpus.CorpusWriter`, which consumes the items
in order and resumes where a killed run stopped.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tokquant.engines.plan import EncodeOptions
from tokquant.errors import FormatError, OutputNameError
from tokquant.formats.corpus import CorpusWriter, Entry, Manifest, key_problem, run_record
from tokquant.formats.tokens import SUFFIX, header_metadata, write_tokens
from tokquant.jobs.report import EncodeReport, NoProgress, Progress
from tokquant.runners.batcher import Encoded, encode_items
from tokquant.runners.ranks import rank_items
from tokquant.sources import Source, input_suffixes, output_path
from tokquant.storage.folder import OutputFolder
from tokquant.tokenizer.model import Tokenizer

#: Finished token files waiting for the writer thread, at most (bounds the codes held).
MAX_PENDING_WRITES = 64


def write_token_file(
    tok: Tokenizer,
    path: Path,
    codes: np.ndarray,
    *,
    source: str,
    channel: int | None = None,
    beam: int | None = None,
) -> None:
    """One input's codes as a token file (a prefix of the columns when the quantizer has
    levels and ``codes`` holds fewer)."""
    levels = codes.shape[1] if tok.quantizer.supports_levels else None
    names, cards = tok.columns(levels)
    write_tokens(
        path,
        codes,
        checkpoint_id=made_by(tok),
        column_names=names,
        cardinalities=cards,
        quantizer=tok.quantizer.describe(),
        frame_rate=tok.config.features.frame_rate,
        source=source,
        channel=channel,
        beam=beam,
    )


def _same_run(tok: Tokenizer, options: EncodeOptions) -> Callable[[Source, Path], str | None]:
    """What tells an existing token file from one this run would write (None: it is
    the same, and is skipped): another checkpoint, column count (levels), beam or
    channel. An earlier run's files are never kept under a summary of this run."""
    want_id = made_by(tok)
    columns = len(tok.columns(options.levels)[1])
    beam = "" if options.beam is None else str(options.beam)

    def why(item: Source, target: Path) -> str | None:
        try:
            meta = header_metadata(target)
            found = len(json.loads(meta.get("columns", "[]")))
        except (FormatError, ValueError):
            return "exists and is not a readable token file"
        if meta.get("checkpoint_id") != want_id:
            return f"was written by another checkpoint ({meta.get('checkpoint_id', '')[:16]}…)"
        if found != columns:
            return f"holds {found} code columns, this run writes {columns} (other `levels`)"
        if meta.get("beam", "") != beam:
            return f"was encoded with another `beam` ({meta.get('beam') or 'the default'})"
        channel = "" if item.channel is None else str(item.channel)
        if meta.get("channel", "") != channel:
            return "holds another channel (other `channels`)"
        return None

    return why


def made_by(tok: Tokenizer) -> str:
    """The id outputs record: codes are only read back by the checkpoint that made them."""
    if tok.checkpoint_id is None:
        raise ValueError(
            "the tokenizer has no checkpoint id: save it as a checkpoint and "
            "encode with tokquant.load(path)"
        )
    return tok.checkpoint_id


def to_files(
    tok: Tokenizer,
    items: list[Source],
    out: Path,
    options: EncodeOptions,
    progress: Progress | None = None,
) -> EncodeReport:
    """One token file per input under ``out`` (existing ones skipped unless overwrite)."""
    progress = progress or NoProgress()
    suffixes = input_suffixes(tok.config)
    items, refused = _named_key_problems(items, suffixes)
    plan, skipped, failures = OutputFolder(out).plan(
        items,
        lambda item: output_path(out, item.stem(suffixes), SUFFIX),
        lambda item: item.path,
        overwrite=options.overwrite,
        reusable=_same_run(tok, options),
    )
    report = EncodeReport(skipped=skipped, failures=refused + failures)
    start = time.perf_counter()
    targets = {id(item): target for item, target in plan}
    progress.start("encode", len(plan))
    with _BackgroundWriter(report, progress) as writer:
        for enc in encode_items(tok, [item for item, _ in plan], **options.batch_arguments(tok)):
            if enc.error is not None:
                report.failures.append(enc.error)
                progress.advance()
                continue
            writer.submit(tok, targets[id(enc.item)], enc, options.beam)
    report.seconds = time.perf_counter() - start
    return report


def _named_key_problems(
    items: list[Source], suffixes: tuple[str, ...]
) -> tuple[list[Source], list[str]]:
    """Inputs keyed by a manifest's name whose key cannot name an output under ``--out``
    (``../x``, a control character) or repeats an earlier key fail alone; the others
    go on. Files' keys are their paths: they need neither check."""
    duplicates = duplicate_keys(items, suffixes)
    kept, refused = [], []
    for item in items:
        problem = duplicates.get(id(item))
        if problem is None and item.keyed_by_name:
            problem = key_problem(corpus_key(item, suffixes))
        if problem is None:
            kept.append(item)
        else:
            refused.append(f"{item.origin}: {problem}")
    return kept, refused


class _BackgroundWriter:
    """Writes token files on one thread; a write error (disk full) stops the run."""

    def __init__(self, report: EncodeReport, progress: Progress) -> None:
        self.report, self.progress = report, progress
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokquant-write")
        self.pending: deque[Future] = deque()

    def __enter__(self) -> _BackgroundWriter:
        return self

    def submit(self, tok: Tokenizer, target: Path, enc: Encoded, beam: int | None) -> None:
        assert enc.codes is not None
        codes, item = enc.codes, enc.item

        def write() -> int:
            write_token_file(
                tok, target, codes, source=item.origin, channel=item.channel, beam=beam
            )
            return int(codes.shape[0])

        self.pending.append(self.pool.submit(write))
        self.pending[-1].add_done_callback(lambda _: self.progress.advance())
        self._settle(block=len(self.pending) > MAX_PENDING_WRITES)

    def _settle(self, block: bool) -> None:
        while self.pending and (block or self.pending[0].done()):
            try:
                self.report.frames += self.pending.popleft().result()
                self.report.done += 1
            except OutputNameError as exc:  # this output's path alone cannot exist
                self.report.failures.append(str(exc))

    def __exit__(self, kind: type | None, *_: object) -> None:
        try:
            if kind is None:
                self._settle(block=True)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def duplicate_keys(items: list[Source], suffixes: tuple[str, ...]) -> dict[int, str]:
    """Why each input whose key an earlier input has fails (by ``id``): a manifest that
    lists a key twice keeps its first, and the rest fail alone."""
    first: dict[str, Source] = {}
    problems: dict[int, str] = {}
    for item in items:
        key = corpus_key(item, suffixes)
        if key in first:
            hint = (
                (
                    "; keys come from the audio's file names: name a column of unique ids "
                    "with `key_column`"
                )
                if getattr(item, "keyed_by_file_name", False)
                else ""
            )
            problems[id(item)] = f"duplicate key {key!r} (first from {first[key].origin}){hint}"
        else:
            first[key] = item
    return problems


def corpus_key(item: Source, suffixes: tuple[str, ...]) -> str:
    """The key ``item`` gets in a corpus (checked with :func:`key_problem` before use)."""
    return item.stem(suffixes).as_posix()


def to_corpus(
    tok: Tokenizer,
    items: list[Source],
    out: Path,
    options: EncodeOptions,
    *,
    rank: int,
    world: int,
    shard_size: int,
    progress: Progress | None = None,
) -> EncodeReport:
    """This rank's share of ``items`` as shards under ``out`` (resumable)."""
    progress = progress or NoProgress()
    suffixes = input_suffixes(tok.config)
    duplicates = duplicate_keys(items, suffixes)  # over every rank's inputs: ranks agree
    position = {id(item): i for i, item in enumerate(items)}
    mine = rank_items(items, rank, world)
    keys = [corpus_key(item, suffixes) for item in mine]
    names, cards = tok.columns(options.levels)
    header = Manifest(
        made_by(tok),
        tok.quantizer.describe(),
        [{"name": n, "cardinality": c} for n, c in zip(names, cards, strict=True)],
        tok.config.features.frame_rate,
    )
    header.extra["run"] = run_record(
        [(corpus_key(item, suffixes), item.origin) for item in items],
        made_by(tok),
        levels=options.levels,
        beam=options.beam,
        channels=options.channels,
    )
    positions = [position[id(item)] for item in mine] if world > 1 else None
    with CorpusWriter.open(
        out,
        header,
        keys,
        shard_size=shard_size,
        rank=rank,
        world=world,
        overwrite=options.overwrite,
        positions=positions,
    ) as writer:
        report = EncodeReport(rank=rank, world_size=world)
        start = time.perf_counter()
        pending = writer.pending()
        progress.start(f"encode r{rank}/{world}", len(mine))
        progress.advance(len(mine) - len(pending))
        report.done = len(mine) - len(pending)  # in shards an earlier run wrote
        problems = {i: duplicates.get(id(mine[i])) or key_problem(keys[i]) for i in pending}
        encoded = encode_items(
            tok, [mine[i] for i in pending if problems[i] is None], **options.batch_arguments(tok)
        )
        for i in pending:
            item = mine[i]
            if problems[i] is None:
                enc = next(encoded)
                codes, error = enc.codes, enc.error
            else:  # a key that cannot be one (unsafe, no file name, taken) fails alone
                codes, error = None, f"{item.origin}: {problems[i]}"
            writer.add(Entry(keys[i], item.origin, 0, item.channel), codes, error)
            if codes is not None:
                report.done += 1
            progress.advance()
        part = writer.finish()
    report.seconds = time.perf_counter() - start
    # every utterance of the rank's shards, as ``done`` counts them: resumed ones too
    report.frames = sum(int(record.frames) for record in part.shards)
    report.failures = [f"{key}: {message}" for key, message in part.failures]
    report.shards_written, report.shards_resumed = writer.written, writer.resumed
    return report
