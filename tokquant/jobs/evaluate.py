"""The eval job: tokens decoded to audio (a vocoder, else Griffin-Lim) and scored against
the audio they were encoded from, as the field's tables score codecs
(:mod:`tokquant.audio.metrics`): per file and overall, with the codes' bitrates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokquant.errors import InputError, OutputError, OutputNameError, TokquantError
from tokquant.jobs.features import decode_codes, source_audio
from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import NoProgress, Progress
from tokquant.storage.folder import OutputFolder


@dataclass
class EvalReport:
    """``rows``: per file, its key, seconds and scores; ``overall``: each score's mean
    over the files that have it; ``missing``: one line per score whose package is not
    installed; ``reference``: the original audio's own DNSMOS (the ceiling)."""

    decoder: str
    rows: list[dict[str, Any]]
    overall: dict[str, float]
    reference: dict[str, float]
    bitrate_kbps: float
    entropy_kbps: float
    missing: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass
class EvalJob(InputOptions):
    """``tokquant eval``: decode ``tokens`` and score them against ``audio`` (the inputs
    they were encoded from, paired by key: the same key, or the one file whose path
    ends in it).

    Example:
        >>> EvalJob("rvq.safetensors", ["tokens/"], ["wavs/"], vocoder="rvq.vocoder.safetensors").run()
    """

    checkpoint: str | Path
    tokens: list[str | Path]
    audio: list[str | Path]
    #: a file from ``train-vocoder`` for this checkpoint, or a Vocos/BigVGAN folder or Hub
    #: id for a checkpoint on its mel (None: Griffin-Lim)
    vocoder: str | Path | None = None
    #: log-mel tokenizers, with ``vocoder``: how far each frame's band energies are moved
    #: toward the tokens' (:func:`~tokquant.decoders.mel.match_mel`; 0: off; None: the
    #: decoder's default, 0.5 for a train-vocoder file and 0 for Vocos/BigVGAN)
    mel_match: float | None = None
    #: a folder for one PNG per file: the original's and the decoded audio's log-mel
    plot: str | Path | None = None
    device: str = "cpu"
    ssl_weights: str | Path | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> EvalReport:
        from tokquant.api import open_tokenizer
        from tokquant.audio import metrics
        from tokquant.devices import use_threads
        from tokquant.engines.outputs import made_by
        from tokquant.sources import input_suffixes, sources_for, takes_audio
        from tokquant.sources.tokens import pair_input, token_sources

        use_threads(self.threads)
        progress = progress or NoProgress()
        started = time.perf_counter()
        plots = None
        if self.plot is not None:  # refused before any scoring, made only once all is good
            plots = OutputFolder(self.plot)
            plots.check()
            _matplotlib()
        tok = open_tokenizer(self.checkpoint, self.device, self.ssl_weights)
        if not takes_audio(tok.config):
            raise InputError(f"{self.checkpoint}: reads feature files; eval scores audio")
        decode = self._decoder(tok)
        sources = token_sources(tok, [Path(p) for p in self.tokens])
        refs = sources_for(
            tok.config, [Path(p) for p in self.audio], outputs=False, options=self.source_options()
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
        progress.start("eval", len(sources))
        for source in sources:
            try:
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
                rows.append(
                    {"key": source.stem, "seconds": round(len(original) / rate, 3), **scores}
                )
                all_codes.append(codes)
                if plots is not None:
                    _plot(plots, source.stem, original, decoded, rate)
            except OutputError as exc:
                if not isinstance(exc, OutputNameError):
                    raise  # a full disk stops the run
                failures.append(str(exc))
            except TokquantError as exc:
                failures.append(str(exc))
            progress.advance()
        cards = (
            [int(c) for c in tok.column_cardinalities[: all_codes[0].shape[1]]] if all_codes else []
        )
        frame_rate = tok.config.features.frame_rate or tok.config.frontend.frame_rate
        return EvalReport(
            decoder=Path(self.vocoder).name if self.vocoder is not None else "griffin-lim",
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

    def _decoder(self, tok: Any) -> Any:
        """``codes -> waveform`` at the tokenizer's rate, aligned with its input."""
        from tokquant.decoders import decode, open_decoder
        from tokquant.decoders.base import check_mel_match

        check_mel_match(self.mel_match)
        decoder = open_decoder(self.vocoder, tok)  # Griffin-Lim refuses non-mel front ends
        return lambda codes: decode(decoder, tok, decode_codes(tok, codes), self.mel_match).numpy()


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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("`plot` needs matplotlib: pip install 'tokquant[plot]'") from None
    return plt


def _plot(
    folder: OutputFolder, key: str, original: np.ndarray, decoded: np.ndarray, rate: int
) -> None:
    """The two log-mel spectrograms, one above the other, as ``KEY.png`` in ``folder``
    (written as every output is: never through a symbolic link below the folder)."""
    from tokquant.audio import metrics
    from tokquant.sources import output_path
    from tokquant.storage.atomic import atomic_path

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
