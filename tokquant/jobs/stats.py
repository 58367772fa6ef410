"""The stats job: codebook usage over token sources, and reconstruction error against
the encoded inputs (``--features``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tokquant.errors import InputError, TokquantError
from tokquant.formats.checkpoint import Checkpoint
from tokquant.jobs.decode import TokenSource, decode_codes
from tokquant.jobs.report import NoProgress, Progress
from tokquant.jobs.sources import InputItem, expand_for, input_suffixes, load_features, strip_suffix
from tokquant.stats import ColumnStats, ReconstructionAccumulator, UsageCounter


@dataclass
class StatsReport:
    sources: int
    usage: UsageCounter
    columns: list[ColumnStats]
    reconstruction: ReconstructionAccumulator | None
    failures: list[str] = field(default_factory=list)


def collect(
    checkpoint: Checkpoint, sources: list[TokenSource], *, features: list[Path] | None,
    layout: str, top: int, progress: Progress | None = None,
) -> StatsReport:  # fmt: skip
    """Usage of every source's codes; with ``features`` (the encoded inputs, in the same
    order and with the same names) also the reconstruction error. A source that cannot
    be read fails alone."""
    progress = progress or NoProgress()
    config = checkpoint.tokenizer.config
    inputs = expand_for(config, features, split=False) if features else None
    if inputs is not None and len(inputs) != len(sources):
        raise InputError(
            f"--features names {len(inputs)} file(s) for {len(sources)} tokenized input(s)"
        )
    usage = UsageCounter(checkpoint.tokenizer.column_cardinalities)
    tok = checkpoint.tokenizer
    recon = (ReconstructionAccumulator(tok.mean.cpu().numpy(), tok.std.cpu().numpy())
             if inputs is not None else None)  # fmt: skip
    failures: list[str] = []
    progress.start("stats", len(sources))
    for i, source in enumerate(sources):
        try:
            codes, channel = source.load(checkpoint)
        except TokquantError as exc:
            failures.append(str(exc))
            progress.advance()
            continue
        usage.add(codes)
        if inputs is not None and recon is not None:
            reference = _paired_features(checkpoint, inputs[i], source, channel, layout)
            if reference.shape[0] != codes.shape[0]:
                raise InputError(
                    f"{inputs[i].path}: {reference.shape[0]} frames, {source.label} has "
                    f"{codes.shape[0]}"
                )
            recon.add(reference, decode_codes(checkpoint, codes))
        progress.advance()
    columns = usage.result(checkpoint.tokenizer.column_names, top)
    return StatsReport(len(sources), usage, columns, recon, failures)


def _paired_features(checkpoint: Checkpoint, item: InputItem, source: TokenSource,
                     channel: int | None, layout: str):  # fmt: skip
    """The features ``source`` was encoded from; their names must agree."""
    config = checkpoint.tokenizer.config
    name = source.name
    if channel is not None:
        name = name.removesuffix(f".ch{channel}")
    if strip_suffix(item.key, input_suffixes(config)).name != name:
        raise InputError(f"{item.path}: does not pair with {source.label} (names differ)")
    return load_features(config, item.path, layout=layout, channel=channel,
                         device=checkpoint.tokenizer.mean.device)  # fmt: skip
