"""The eval job: tokens decoded to audio (a vocoder, else Griffin-Lim) and scored against
the audio they were encoded from, as the field's tables score codecs
(:mod:`tokquant.audio.metrics`): per file and overall, with the codes' bitrates."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tokquant.api import open_tokenizer
from tokquant.audio import metrics
from tokquant.decoders import decode, open_decoder
from tokquant.decoders.base import check_mel_match
from tokquant.devices import use_threads
from tokquant.engines.outputs import made_by
from tokquant.errors import InputError
from tokquant.jobs.report import EvalReport, NoProgress, Progress
from tokquant.runners.each import for_each
from tokquant.runners.features import decode_codes, source_audio
from tokquant.sources import input_suffixes, output_path, sources_for, takes_audio
from tokquant.sources.tokens import pair_input, token_sources
from tokquant.storage.atomic import atomic_path
from tokquant.storage.folder import OutputFolder

if TYPE_CHECKING:
    from tokquant.jobs.evaluate import EvalJob
    from tokquant.sources.tokens import TokenSource


def _means(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k in (rows[0] if rows else {}) if k not in ("key", "seconds")]
    out = {}
    for k in keys:
        values = [r[k] for r in rows if r.get(k) is not None]
        if values:
            out[k] = float(np.mean(values))
    return out


def _matplotlib() -> Any:
    try:
        # optional extra: matplotlib
        import matplotlib

        matplotlib.use("Agg")
        # optional extra: matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("`plot` needs matplotlib: pip install 'tokquant[plot]'") from None
    return plt


def _plot(
    folder: OutputFolder, key: str, original: np.ndarray, decoded: np.ndarray, rate: int
) -> None:
    """The two log-mel spectrograms, one above the other, as ``KEY.png`` in ``folder``
    (written as every output is: never through a symbolic link below the folder)."""
    plt = _matplotlib()
    target = folder.file(output_path(folder.root, Path(key), ".png"))
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    try:
        for ax, wave, title in ((axes[0], original, "original"), (axes[1], decoded, "decoded")):
            mel = metrics.log_mel(metrics.at_16k(wave, rate))
            ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma")
            ax.set_title(f"{key}: {title}")
        axes[1].set_xlabel("frame (16 ms)")
        fig.tight_layout()
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(fig)


def run_evaluate(job: EvalJob, progress: Progress | None = None) -> EvalReport:
    use_threads(job.threads)
    progress = progress or NoProgress()
    started = time.perf_counter()
    plots = None
    if job.plot is not None:  # refused before any scoring, made only once all is good
        plots = OutputFolder(job.plot)
        plots.check()
        _matplotlib()
    tok = open_tokenizer(job.checkpoint, job.device, job.ssl_weights)
    if not takes_audio(tok.config):
        raise InputError(f"{job.checkpoint}: reads feature files; eval scores audio")
    decoder, decode = _decoder(job, tok)
    sources = token_sources(tok, [Path(p) for p in job.tokens])
    refs = sources_for(
        tok.config, [Path(p) for p in job.audio], outputs=False, options=job.source_options()
    )
    if len(refs) != len(sources):
        raise InputError(
            f"`audio` names {len(refs)} input(s) for {len(sources)} tokenized input(s)"
        )
    suffixes = input_suffixes(tok.config)
    missing = metrics.missing_packages()
    rate = tok.config.frontend.sample_rate
    rows, reference, failures, all_codes = [], [], [], []
    if plots is not None:
        plots.create()

    def score(source: TokenSource) -> None:
        codes, channel = source.load(tok)
        item = pair_input(refs, source, channel, suffixes)
        original = source_audio(item.with_channel(channel), rate).astype(np.float64)
        decoded = decode(codes)
        try:
            scores = metrics.score(original, decoded, rate, skip=missing)
            if "dnsmos_ovrl" not in missing:
                reference.append(metrics.dnsmos(metrics.at_16k(original, rate)))
        except ValueError as exc:  # too short, not finite, far too loud
            raise InputError(f"{source.label}: {exc}") from None
        rows.append({"key": source.stem, "seconds": round(len(original) / rate, 3), **scores})
        all_codes.append(codes)
        if plots is not None:
            _plot(plots, source.stem, original, decoded, rate)

    for_each(sources, score, failures, progress, "eval")
    cards = [int(c) for c in tok.column_cardinalities[: all_codes[0].shape[1]]] if all_codes else []
    frame_rate = tok.config.features.frame_rate or tok.config.frontend.frame_rate
    return EvalReport(
        decoder=Path(job.vocoder).name if job.vocoder is not None else decoder.name,
        rows=rows,
        overall=_means(rows),
        reference=_means(reference),
        bitrate_kbps=metrics.bitrate_kbps(frame_rate, cards),
        entropy_kbps=metrics.entropy_kbps(all_codes, cards, frame_rate),
        missing=sorted(set(missing.values())),
        failures=failures,
        seconds=time.perf_counter() - started,
        checkpoint_id=made_by(tok),
    )


def _decoder(job: EvalJob, tok: Any) -> Any:
    """``codes -> waveform`` at the tokenizer's rate, aligned with its input."""
    check_mel_match(job.mel_match)
    decoder = open_decoder(job.vocoder, tok)  # Griffin-Lim refuses non-mel front ends
    return decoder, lambda codes: decode(
        decoder, tok, decode_codes(tok, codes), job.mel_match
    ).numpy()
