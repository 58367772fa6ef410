"""The stats job: codebook usage over token sources, and reconstruction error against
the encoded inputs (``--features``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tokquant.errors import InputError, TokquantError
from tokquant.jobs.features import FeatureReader, decode_codes
from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import NoProgress, Progress
from tokquant.sources import SourceOptions, input_suffixes, sources_for
from tokquant.sources.tokens import TokenSource, pair_input
from tokquant.storage.folder import check_output_file
from tokquant.tokenizer.model import Tokenizer
from tokquant.tokenizer.usage import ColumnStats, ReconstructionAccumulator, UsageCounter


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
    failures: list[str] = []
    progress.start("stats", len(sources))
    for source in sources:
        try:
            codes, channel = source.load(tok)
        except TokquantError as exc:
            failures.append(str(exc))
            progress.advance()
            continue
        usage.add(codes)
        if inputs is not None and reader is not None and recon is not None:
            item = pair_input(inputs, source, channel, input_suffixes(tok.config))
            reference = reader.whole(item.with_channel(channel))
            if reference.shape[0] != codes.shape[0]:
                raise InputError(
                    f"{item.origin}: {reference.shape[0]} frames, {source.label} has "
                    f"{codes.shape[0]}"
                )
            recon.add(reference, decode_codes(tok, codes))
        progress.advance()
    columns = usage.result(tok.column_names, top)
    return StatsReport(len(sources), usage, columns, recon, failures)


@dataclass
class StatsJob(InputOptions):
    """``tokquant stats``: codebook usage of token files, folders, lists or corpora, and
    with ``features`` (the encoded inputs) the reconstruction error.

    Example:
        >>> report = StatsJob("model.safetensors", ["tokens/"], features=["wavs/"]).run()
        >>> [c.usage for c in report.columns]
    """

    checkpoint: str | Path
    tokens: list[str | Path]
    features: list[str | Path] | None = None
    top: int = 5
    #: a PNG of each column's usage histogram (needs matplotlib)
    plot: str | Path | None = None
    feature_layout: str | None = None
    device: str = "cpu"
    ssl_weights: str | Path | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> StatsReport:
        """The report, its ``checkpoint_id`` set; per-source failures are in it."""
        from tokquant.api import open_tokenizer
        from tokquant.devices import use_threads
        from tokquant.sources.tokens import token_sources

        use_threads(self.threads)
        if self.plot is not None:  # refused before the work, never over an input
            check_output_file(
                Path(self.plot),
                True,
                "plot",
                [Path(self.checkpoint), *map(Path, self.tokens), *map(Path, self.features or [])],
            )
        tok = open_tokenizer(self.checkpoint, self.device, self.ssl_weights)
        sources = token_sources(tok, [Path(p) for p in self.tokens])
        where = self.source_options()
        features = None if self.features is None else [Path(p) for p in self.features]
        report = collect(
            tok,
            sources,
            features=features,
            top=self.top,
            progress=progress,
            where=where,
            layout=self.feature_layout,
        )
        report.checkpoint_id = tok.checkpoint_id
        if self.plot is not None:
            plot_usage(Path(self.plot), report.usage, report.columns)
        return report


def plot_usage(path: Path, usage: UsageCounter, columns: list[ColumnStats]) -> None:
    """A bar chart of each column's code counts, written atomically as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("`plot` needs matplotlib: pip install 'tokquant[plot]'") from None
    from tokquant.storage.atomic import atomic_path

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
