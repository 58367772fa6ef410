"""The stats job: codebook usage over token sources, and reconstruction error against
the encoded inputs (``--features``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.api import open_tokenizer
from tokquant.devices import use_threads
from tokquant.errors import InputError
from tokquant.jobs.report import NoProgress, Progress
from tokquant.runners.each import for_each
from tokquant.runners.features import FeatureReader, decode_codes
from tokquant.sources import SourceOptions, input_suffixes, sources_for
from tokquant.sources.tokens import TokenSource, pair_input, token_sources
from tokquant.storage.atomic import atomic_path
from tokquant.storage.folder import check_output_file
from tokquant.tokenizer.model import Tokenizer
from tokquant.tokenizer.usage import ColumnStats, ReconstructionAccumulator, UsageCounter

if TYPE_CHECKING:
    from tokquant.jobs.stats import StatsJob


@dataclass
class StatsReport:
    sources: int
    usage: UsageCounter
    columns: list[ColumnStats]
    reconstruction: ReconstructionAccumulator | None
    failures: list[str] = field(default_factory=list)
    checkpoint_id: str | None = None


def collect(
    tok: Tokenizer,
    sources: list[TokenSource],
    *,
    features: list[Path] | None,
    layout: str | None = None,
    top: int = 5,
    progress: Progress | None = None,
    where: SourceOptions | None = None,
) -> StatsReport:
    """Usage of every source's codes; with ``features`` (the encoded inputs, under the
    same keys, or in the same order with the same names) also the reconstruction error.
    A source that cannot be read fails alone."""
    progress = progress or NoProgress()
    inputs = sources_for(tok.config, features, options=where) if features else None
    reader = FeatureReader.of(tok, layout) if inputs is not None else None
    if inputs is not None and len(inputs) != len(sources):
        raise InputError(
            f"`features` names {len(inputs)} file(s) for {len(sources)} tokenized input(s)"
        )
    usage = UsageCounter(tok.column_cardinalities)
    recon = (
        ReconstructionAccumulator(tok.mean.cpu().numpy(), tok.std.cpu().numpy())
        if inputs is not None
        else None
    )

    def count(source: TokenSource) -> None:
        codes, channel = source.load(tok)
        if inputs is not None and reader is not None and recon is not None:
            item = pair_input(inputs, source, channel, input_suffixes(tok.config))
            reference = reader.whole(item.with_channel(channel))
            if reference.shape[0] != codes.shape[0]:
                raise InputError(
                    f"{item.origin}: {reference.shape[0]} frames, {source.label} has "
                    f"{codes.shape[0]}"
                )
            recon.add(reference, decode_codes(tok, codes))
        usage.add(codes)

    failures: list[str] = []
    for_each(sources, count, failures, progress, "stats")
    columns = usage.result(tok.column_names, top)
    return StatsReport(len(sources), usage, columns, recon, failures)


def plot_usage(path: Path, usage: UsageCounter, columns: list[ColumnStats]) -> None:
    """A bar chart of each column's code counts, written atomically as a PNG."""
    try:
        # optional extra: matplotlib
        import matplotlib

        matplotlib.use("Agg")
        # optional extra: matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("`plot` needs matplotlib: pip install 'tokquant[plot]'") from None

    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns)), squeeze=False)
    for g, (ax, col) in enumerate(zip(axes[:, 0], columns, strict=True)):
        values, counts = usage.histogram(g)
        ax.bar(values, counts, width=max(1.0, col.cardinality / 400), color="tab:blue")
        ax.set_xlim(-0.5, col.cardinality - 0.5)
        ax.set_title(
            f"{col.name}: {col.used}/{col.cardinality} used, {col.entropy_bits:.2f} bits",
            fontsize=9,
        )
        ax.set_ylabel("count")
    axes[-1, 0].set_xlabel("code")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def run_stats(job: StatsJob, progress: Progress | None = None) -> StatsReport:
    """The report, its ``checkpoint_id`` set; per-source failures are in it."""
    use_threads(job.threads)
    if job.plot is not None:  # refused before the work, never over an input
        check_output_file(
            Path(job.plot),
            True,
            "plot",
            [Path(job.checkpoint), *map(Path, job.tokens), *map(Path, job.features or [])],
        )
    tok = open_tokenizer(job.checkpoint, job.device, job.ssl_weights)
    sources = token_sources(tok, [Path(p) for p in job.tokens])
    where = job.source_options()
    features = None if job.features is None else [Path(p) for p in job.features]
    report = collect(
        tok,
        sources,
        features=features,
        top=job.top,
        progress=progress,
        where=where,
        layout=job.feature_layout,
    )
    report.checkpoint_id = tok.checkpoint_id
    if job.plot is not None:
        plot_usage(Path(job.plot), report.usage, report.columns)
    return report
