"""The decode job: token files and corpus utterances (:class:`~tokquant.sources.tokens.
TokenSource` s) -> features (.npy) or audio (.wav)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tokquant.api import open_tokenizer
from tokquant.audio.io import write_wav
from tokquant.decoders import decode, open_decoder
from tokquant.decoders.base import Decoder, check_mel_match
from tokquant.devices import use_threads
from tokquant.engines.outputs import made_by
from tokquant.errors import InputError, TokquantError
from tokquant.formats.features import write_features
from tokquant.formats.tokens import SUFFIX
from tokquant.jobs.report import NoProgress, Progress, RunReport
from tokquant.runners.each import for_each
from tokquant.runners.features import decode_codes
from tokquant.sources import output_path, strip_suffix, takes_audio
from tokquant.sources.tokens import TokenSource, token_sources
from tokquant.storage.atomic import atomic_path
from tokquant.storage.folder import OutputFolder
from tokquant.storage.regular import read_regular
from tokquant.storage.safe_json import loads
from tokquant.tokenizer.model import Tokenizer

if TYPE_CHECKING:
    from tokquant.jobs.decode import DecodeJob


def check_decode_options(
    tok: Tokenizer,
    *,
    audio: bool,
    levels: int | None,
    vocoder: object = None,
    mel_match: float | None = None,
) -> None:
    config = tok.config
    check_mel_match(mel_match)
    if vocoder is not None and not audio:
        raise InputError("`vocoder` decodes to audio: set `audio` too")
    if audio and not takes_audio(config):
        raise InputError(
            f"{tok.checkpoint_path}: `audio` needs a checkpoint with an audio front end"
        )
    if levels is not None and (not tok.quantizer.supports_levels or levels < 1):
        raise InputError("`levels` applies to RVQ checkpoints, as a number >= 1")


def write_decoded(
    tok: Tokenizer,
    codes: np.ndarray,
    out_path: Path,
    *,
    audio: bool,
    levels: int | None = None,
    vocoder: object = None,
    mel_match: float | None = None,
) -> int:
    """Decode ``codes`` (their first ``levels`` columns) to ``.npy`` features, or with
    ``audio`` to a wav (through ``vocoder``, a :class:`~tokquant.decoders.Decoder` opened
    for ``tok`` or what :func:`~tokquant.decoders.open_decoder` opens: None is
    Griffin-Lim, and ``mel_match``); returns the frame count."""
    if levels is not None:
        if levels > codes.shape[1]:
            raise InputError(
                f"{out_path.name}: `levels={levels}`, the tokens have {codes.shape[1]}"
            )
        codes = codes[:, :levels]
    features = decode_codes(tok, codes)
    if audio:
        decoder = vocoder if isinstance(vocoder, Decoder) else open_decoder(vocoder, tok)
        wave = decode(decoder, tok, features, mel_match).numpy()
        write_wav(out_path, wave, tok.config.frontend.sample_rate)
    else:
        write_features(out_path, features)
    return int(codes.shape[0])


def to_files(
    tok: Tokenizer,
    sources: list[TokenSource],
    out: Path,
    *,
    audio: bool = False,
    levels: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    vocoder: object = None,
    mel_match: float | None = None,
    settings: dict | None = None,
) -> RunReport:
    """Decode every source into ``out``, mirroring its key. With ``settings``
    (:func:`decode_settings`) existing outputs are kept only where the folder's record
    (:data:`RECORD`) says these settings made them; outputs of other settings are refused
    unless ``overwrite``, and the record is written before the first output."""
    suffix = ".wav" if audio else ".npy"

    def work(source: TokenSource, target: Path) -> int:
        codes, _ = source.load(tok)
        return write_decoded(
            tok, codes, target, audio=audio, levels=levels, vocoder=vocoder, mel_match=mel_match
        )

    record = _read_record(out) if settings is not None else None

    def reusable(source: TokenSource, target: Path) -> str | None:
        if record is None or settings is None or record == settings:
            return None  # no record: outputs of a tokquant that kept none are kept
        changed = sorted(k for k in {*record, *settings} if record.get(k) != settings.get(k))
        return f"was decoded with other settings ({', '.join(changed)})"

    return run_each(
        sources,
        lambda s: output_path(out, strip_suffix(s.key, (SUFFIX,)), suffix),
        work,
        source_of=lambda s: s.path,
        overwrite=overwrite,
        label="decode",
        progress=progress,
        root=out,
        reusable=reusable,
        before=None if settings is None else lambda: _write_record(out, settings),
    )


#: The record of the settings a folder's decoded outputs were made with.
RECORD = ".tokquant-decode.json"


def _read_record(out: Path) -> dict | None:
    path = out / RECORD
    if not path.exists():
        return None
    try:
        data = loads(read_regular(path), str(path))
    except TokquantError:
        return {"record": "unreadable"}
    return data.get("settings") if isinstance(data, dict) else {"record": "unreadable"}


def _write_record(out: Path, settings: dict) -> None:
    with atomic_path(out / RECORD) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"format": "tokquant-decode", "settings": settings}, fh, sort_keys=True)


def decode_settings(
    tok: Tokenizer, *, audio: bool, levels: int | None, vocoder: object, mel_match: float | None
) -> dict:
    """What makes a decoded output what it is: the checkpoint, features or audio, the
    levels, and for audio the decoder (a vocoder file's sha256, a pretrained folder's
    name) and the mel match it applies."""
    settings: dict = {"checkpoint_id": made_by(tok), "audio": audio, "levels": levels}
    if audio:
        decoder = vocoder if isinstance(vocoder, Decoder) else None
        settings["decoder"] = "griffin-lim" if decoder is None else decoder.identity
        if decoder is not None and decoder.mel_match is not None:
            settings["mel_match"] = decoder.mel_match if mel_match is None else mel_match
    return settings


def run_each(
    items: list,
    target_of: Callable,
    work: Callable[..., int],
    *,
    source_of: Callable,
    overwrite: bool,
    label: str,
    root: Path,
    progress: Progress | None = None,
    reusable: Callable | None = None,
    before: Callable[[], None] | None = None,
) -> RunReport:
    """``work(item, target) -> frames`` for every item whose target needs writing; a
    failing item is recorded and the others go on, but a write error stops the run.
    ``reusable`` says why an existing target may not be kept (see
    :meth:`OutputFolder.plan`); ``before`` runs once the plan stands, before any write."""
    progress = progress or NoProgress()
    plan, skipped, failures = OutputFolder(root).plan(
        items, target_of, source_of, overwrite=overwrite, reusable=reusable
    )
    if before is not None:
        before()
    report = RunReport(skipped=skipped, failures=failures)
    start = time.perf_counter()
    frames = for_each(plan, lambda pair: work(*pair), report.failures, progress, label)
    report.done = sum(n is not None for n in frames)
    report.frames = sum(n for n in frames if n is not None)
    report.seconds = time.perf_counter() - start
    return report


def run_decode(job: DecodeJob, progress: Progress | None = None) -> RunReport:
    use_threads(job.threads)
    tok = open_tokenizer(job.checkpoint, job.device)
    out = Path(job.out)
    sources = token_sources(tok, [Path(p) for p in job.tokens])
    check_decode_options(
        tok,
        audio=job.audio,
        levels=job.levels,
        vocoder=job.vocoder,
        mel_match=job.mel_match,
    )
    vocoder = None
    if job.audio:
        vocoder = open_decoder(job.vocoder, tok)
    OutputFolder(out).create()  # once every input is known good: no empty folder
    settings = decode_settings(
        tok, audio=job.audio, levels=job.levels, vocoder=vocoder, mel_match=job.mel_match
    )
    return to_files(
        tok,
        sources,
        out,
        audio=job.audio,
        levels=job.levels,
        overwrite=job.overwrite,
        progress=progress,
        vocoder=vocoder,
        mel_match=job.mel_match,
        settings=settings,
    )
