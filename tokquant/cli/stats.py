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
    tokens: Annotated[list[Path], typer.Argument(help="Token files, folders or list files.")],
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
    import numpy as np

    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.formats.tokens import SUFFIX
    from tokquant.inputs import expand_inputs, strip_suffix
    from tokquant.pipeline import (
        decode_codes,
        input_kind,
        input_suffixes,
        load_features,
        read_tokens_for,
    )
    from tokquant.stats import ReconstructionAccumulator, column_stats

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    items = expand_inputs(tokens, (SUFFIX,), "token")
    config = ckpt.tokenizer.config
    file_layout = layout.value if layout else config.features.layout
    suffixes = input_suffixes(config)
    feature_items = expand_inputs(features, suffixes, input_kind(config)) if features else None
    if feature_items is not None and len(feature_items) != len(items):
        raise InputError(
            f"--features names {len(feature_items)} file(s) for {len(items)} token file(s)"
        )

    codes_per_file = []
    recon = ReconstructionAccumulator()
    with ui.progress() as bar:
        task = bar.add_task("stats", total=len(items))
        for i, item in enumerate(items):
            tok = read_tokens_for(ckpt, item.path)
            codes_per_file.append(tok.codes)
            if feature_items is not None:
                feat_item = feature_items[i]
                token_name = strip_suffix(item.key, (SUFFIX,)).name
                if tok.channel is not None:
                    token_name = token_name.removesuffix(f".ch{tok.channel}")
                if strip_suffix(feat_item.key, suffixes).name != token_name:
                    raise InputError(
                        f"{feat_item.path}: does not pair with {item.path} (names differ)"
                    )
                ref = load_features(config, feat_item.path, layout=file_layout, channel=tok.channel)
                if ref.shape[0] != tok.num_frames:
                    raise InputError(
                        f"{feat_item.path}: {ref.shape[0]} frames, {item.path} has {tok.num_frames}"
                    )
                recon.add(ref, decode_codes(ckpt, tok.codes))
            bar.advance(task)
    codes = np.concatenate(codes_per_file)
    tok_model = ckpt.tokenizer
    columns = [
        column_stats(codes[:, g], card, name, top_k=top)
        for g, (name, card) in enumerate(
            zip(tok_model.column_names, tok_model.column_cardinalities, strict=True)
        )
    ]
    result = {
        "files": len(items),
        "frames": int(codes.shape[0]),
        "checkpoint_id": ckpt.id,
        "columns": [c.to_dict() for c in columns],
    }
    if feature_items is not None:
        result["reconstruction"] = recon.result().to_dict()
    if plot is not None:
        _plot_usage(plot, codes, columns)
    if json_out:
        ui.json(result)
        return
    ui.table(
        f"codebook usage: {len(items)} file(s), {codes.shape[0]} frames",
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


def _plot_usage(path: Path, codes, columns) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'tokquant[plot]'") from None
    import numpy as np

    from tokquant.formats._atomic import atomic_path

    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns)), squeeze=False)
    for g, (ax, col) in enumerate(zip(axes[:, 0], columns, strict=True)):
        values, counts = np.unique(codes[:, g], return_counts=True)
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
