"""``tokquant stats``: codebook usage of token files, and reconstruction error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import Checkpoint, Device, JsonOut, Layout, Quiet
from tokquant.cli._output import Output
from tokquant.errors import InputError


def stats(
    checkpoint: Checkpoint,
    tokens: Annotated[
        list[Path], typer.Argument(help="Token files, folders, list files, or corpus folders.")
    ],
    features: Annotated[
        list[Path] | None,
        typer.Option(
            "--features",
            help="The encoded inputs (feature or audio files, same names as the tokens) to add "
            "reconstruction error, in the feature domain.",
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="How many most frequent codes to list.")] = 5,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a usage histogram per column (PNG).")
    ] = None,
    layout: Layout = None,
    device: Device = "cpu",
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Per column (RVQ level or bit group): usage, dead codes, entropy, perplexity."""
    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.formats.corpus import is_corpus
    from tokquant.formats.tokens import SUFFIX
    from tokquant.inputs import expand_inputs, strip_suffix
    from tokquant.pipeline import (
        decode_codes,
        input_kind,
        input_suffixes,
        load_features,
        open_corpus_for,
        read_tokens_for,
    )
    from tokquant.stats import ReconstructionAccumulator, UsageCounter

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    config = ckpt.tokenizer.config
    # Units: (label, name used to pair with --features, loader of (codes, channel)).
    units = []
    files = [t for t in tokens if not is_corpus(t)]
    for item in expand_inputs(files, (SUFFIX,), "token") if files else []:

        def from_file(path=item.path):
            tok = read_tokens_for(ckpt, path)
            return tok.codes, tok.channel

        units.append((str(item.path), strip_suffix(item.key, (SUFFIX,)).name, from_file))
    for root in (t for t in tokens if is_corpus(t)):
        corpus = open_corpus_for(ckpt, root)
        for u in corpus.utterances():
            channel = int(u.source.rsplit("#ch", 1)[1]) if "#ch" in u.source else None

            def from_corpus(corpus=corpus, key=u.key, channel=channel):
                return corpus[key], channel

            units.append((f"{root}:{u.key}", u.key.rsplit("/", 1)[-1], from_corpus))
    file_layout = layout.value if layout else config.features.layout
    suffixes = input_suffixes(config)
    feature_items = expand_inputs(features, suffixes, input_kind(config)) if features else None
    if feature_items is not None and len(feature_items) != len(units):
        raise InputError(
            f"--features names {len(feature_items)} file(s) for {len(units)} tokenized input(s)"
        )

    tok_model = ckpt.tokenizer
    usage = UsageCounter(tok_model.column_cardinalities)
    recon = ReconstructionAccumulator()
    with ui.progress() as bar:
        task = bar.add_task("stats", total=len(units))
        for i, (label, name, load) in enumerate(units):
            codes, channel = load()
            usage.add(codes)
            if feature_items is not None:
                feat_item = feature_items[i]
                if channel is not None:
                    name = name.removesuffix(f".ch{channel}")
                if strip_suffix(feat_item.key, suffixes).name != name:
                    raise InputError(f"{feat_item.path}: does not pair with {label} (names differ)")
                ref = load_features(config, feat_item.path, layout=file_layout, channel=channel)
                if ref.shape[0] != codes.shape[0]:
                    raise InputError(
                        f"{feat_item.path}: {ref.shape[0]} frames, {label} has {codes.shape[0]}"
                    )
                recon.add(ref, decode_codes(ckpt, codes))
            bar.advance(task)
    columns = usage.result(tok_model.column_names, top)
    items = units
    result = {
        "files": len(items),
        "frames": usage.tokens,
        "checkpoint_id": ckpt.id,
        "columns": [c.to_dict() for c in columns],
    }
    if feature_items is not None:
        result["reconstruction"] = recon.result().to_dict()
    if plot is not None:
        _plot_usage(plot, usage, columns)
    if json_out:
        ui.json(result)
        return
    ui.table(
        f"codebook usage: {len(items)} input(s), {usage.tokens} frames",
        ["column", "codes", "used", "usage", "dead", "entropy (bits)", "perplexity", "top codes"],
        [
            [c.name, c.cardinality, c.used, f"{100 * c.usage:.2f}%", c.dead,
             f"{c.entropy_bits:.3f} / {c.max_entropy_bits:.0f}", f"{c.perplexity:.1f}",
             " ".join(f"{code}x{n}" for code, n in c.top)]
            for c in columns
        ],
    )  # fmt: skip
    if feature_items is not None:
        r = recon.result()
        snr = "inf" if math.isinf(r.snr_db) else f"{r.snr_db:.2f} dB"
        ui.table("reconstruction", ["frames", "MSE", "SNR", "cosine"],
                 [[r.frames, f"{r.mse:.5g}", snr, f"{r.cosine:.4f}"]])  # fmt: skip


def _plot_usage(path: Path, usage, columns) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'tokquant[plot]'") from None
    from tokquant.formats._atomic import atomic_path

    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns)), squeeze=False)
    for g, (ax, col) in enumerate(zip(axes[:, 0], columns, strict=True)):
        values, counts = usage.histogram(g)
        ax.bar(values, counts, width=max(1.0, col.cardinality / 400), color="tab:blue")
        ax.set_xlim(-0.5, col.cardinality - 0.5)
        ax.set_title(f"{col.name}: {col.used}/{col.cardinality} used, "
                     f"{col.entropy_bits:.2f} bits", fontsize=9)  # fmt: skip
        ax.set_ylabel("count")
    axes[-1, 0].set_xlabel("code")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
