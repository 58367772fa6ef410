"""The compare job's work: every tokenizer through the same jobs a user would run by hand
(``encode``, ``decode --audio``, ``eval``, ``stats --plot``), so its numbers are theirs
file by file, each timed; then one table, and with ``html`` the listening page
(:mod:`tokquant.formats.listening_page`).

Output folder: ``systems/NAME/`` per tokenizer (``tokens/``, ``wav/``, ``mels/``,
``usage.png``), ``original/`` (each reference as a wav, numbered: a stranger's file name
is shown on the page as text, never used as a path) and ``index.html``. A second run
reuses what the first wrote (encode and decode skip what exists) unless ``overwrite``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.api import open_tokenizer
from tokquant.audio.io import write_wav
from tokquant.devices import use_threads
from tokquant.errors import InputError
from tokquant.formats.listening_page import FileEntry, Page, SystemEntry, write_page
from tokquant.jobs.decode import DecodeJob
from tokquant.jobs.encode import EncodeJob
from tokquant.jobs.evaluate import EvalJob
from tokquant.jobs.report import CompareReport, EvalReport, NoProgress, Progress
from tokquant.jobs.stats import StatsJob
from tokquant.runners.features import source_audio
from tokquant.sources import input_suffixes, output_path, sources_for
from tokquant.storage.folder import OutputFolder

if TYPE_CHECKING:
    from tokquant.jobs.compare import CompareJob

#: The table's columns: key, label, and whether higher is better (None: neither).
COLUMNS: list[tuple[str, str, bool | None]] = [
    ("bitrate_kbps", "kbps", None),
    ("entropy_kbps", "kbps (entropy)", None),
    ("mel_distance", "mel dist", False),
    ("stft_distance", "stft dist", False),
    ("stoi", "STOI", True),
    ("pesq_wb", "PESQ-WB", True),
    ("dnsmos_sig", "SIG", True),
    ("dnsmos_bak", "BAK", True),
    ("dnsmos_ovrl", "OVRL", True),
    ("speaker_similarity", "speaker sim", True),
    ("encode_x_real_time", "encode xRT", True),
    ("decode_x_real_time", "decode xRT", True),
]


def system_names(tokenizers: list[Path]) -> list[str]:
    """A folder-safe, unique name per tokenizer: its file's stem, ``-2``, ``-3`` after."""
    names: list[str] = []
    for path in tokenizers:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name.removesuffix(".safetensors")) or "t"
        base = base.lstrip(".") or "t"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def run_compare(job: CompareJob, progress: Progress | None = None) -> CompareReport:
    use_threads(job.threads)
    progress = progress or NoProgress()
    started = time.perf_counter()
    tokenizers = [Path(p) for p in job.tokenizers]
    if not tokenizers:
        raise InputError("`tokenizers`: name at least one")
    vocoders = list(job.vocoders) if job.vocoders is not None else ["default"] * len(tokenizers)
    if len(vocoders) != len(tokenizers):
        raise InputError(
            f"`vocoders` names {len(vocoders)} decoder(s) for {len(tokenizers)} tokenizer(s): "
            f'one each, in order ("default" for a tokenizer\'s own)'
        )
    out = OutputFolder(Path(job.out))
    out.check()
    out.create()
    names = system_names(tokenizers)
    systems, reports = [], []
    for name, ckpt, vocoder in zip(names, tokenizers, vocoders, strict=True):
        report, row = _one_system(job, name, ckpt, None if vocoder == "default" else vocoder,
                                  progress)  # fmt: skip
        systems.append(row)
        reports.append(report)
    audio_seconds = sum(r["seconds"] for r in reports[0].rows)
    reference = next((r.reference for r in reports if r.reference), {})
    missing = sorted({m for r in reports for m in r.missing})
    page = None
    if job.html:
        page = str(_write_page(job, out.root, names, systems, reports, reference))
    return CompareReport(systems, reference, audio_seconds, missing, page,
                         time.perf_counter() - started)  # fmt: skip


def _one_system(
    job: CompareJob, name: str, ckpt: Path, vocoder: str | None, progress: Progress
) -> tuple[EvalReport, dict[str, Any]]:
    root = Path(job.out) / "systems" / name
    where = {"audio_column": job.audio_column, "key_column": job.key_column,
             "audio_member": job.audio_member, "segments": job.segments}  # fmt: skip
    common = {"device": job.device, "threads": job.threads}
    start = time.perf_counter()
    EncodeJob(ckpt, list(job.audio), root / "tokens", overwrite=job.overwrite,
              ssl_weights=job.ssl_weights, **common, **where).run(progress)  # fmt: skip
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = DecodeJob(ckpt, [root / "tokens"], root / "wav", audio=True, vocoder=vocoder,
                        overwrite=job.overwrite, **common).run(progress)  # fmt: skip
    decode_seconds = time.perf_counter() - start
    report = EvalJob(ckpt, [root / "tokens"], list(job.audio), vocoder=vocoder,
                     plot=root / "mels" if job.html else None, ssl_weights=job.ssl_weights,
                     **common, **where).run(progress)  # fmt: skip
    if job.html:
        StatsJob(ckpt, [root / "tokens"], plot=root / "usage.png", **common).run(progress)
    seconds = sum(r["seconds"] for r in report.rows)
    fresh = decoded.done > 0 and not decoded.skipped  # speeds of work done in this run
    row = {
        "name": name,
        "checkpoint": str(ckpt),
        "checkpoint_id": report.checkpoint_id,
        "decoder": report.decoder,
        "bitrate_kbps": report.bitrate_kbps,
        "entropy_kbps": report.entropy_kbps,
        "overall": report.overall,
        "encode_x_real_time": seconds / encode_seconds if fresh and encode_seconds else None,
        "decode_x_real_time": seconds / decode_seconds if fresh and decode_seconds else None,
        "rows": report.rows,
        "failures": report.failures,
    }
    return report, row


def _write_page(
    job: CompareJob,
    root: Path,
    names: list[str],
    systems: list[dict[str, Any]],
    reports: list[EvalReport],
    reference: dict[str, float],
) -> Path:
    """``index.html`` and the originals beside it; every path on it is one this run wrote."""
    originals = _write_originals(job, root)
    keys = sorted({row["key"] for report in reports for row in report.rows})
    files = []
    for key in keys:
        decoded, images = [], []
        for name, report in zip(names, reports, strict=True):
            ok = any(row["key"] == key for row in report.rows)
            here = root / "systems" / name
            decoded.append(
                _below(root, output_path(here / "wav", Path(key), ".wav")) if ok else None
            )
            images.append(
                _below(root, output_path(here / "mels", Path(key), ".png")) if ok else None
            )
        files.append(FileEntry(key, originals.get(key), decoded, images))
    entries = [
        SystemEntry(s["name"], s["decoder"],
                    {**s["overall"], **{k: s[k] for k in ("bitrate_kbps", "entropy_kbps",
                                                          "encode_x_real_time",
                                                          "decode_x_real_time")}},
                    f"systems/{s['name']}/usage.png")
        for s in systems
    ]  # fmt: skip
    notes = [f"{len(keys)} file(s) of reference audio; scores as `tokquant eval` computes them, "
             f"the original's DNSMOS last (the ceiling)"]  # fmt: skip
    page = Page("tokquant compare", COLUMNS, entries, files, reference, notes)
    target = root / "index.html"
    write_page(OutputFolder(root).file(target), page)
    return target


def _below(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _write_originals(job: CompareJob, root: Path) -> dict[str, str]:
    """Each reference as ``original/NNNN.wav`` (numbered, at its tokenizer's rate): the
    page plays what the scores compared against."""
    tok = open_tokenizer(job.tokenizers[0], "cpu", job.ssl_weights)
    rate = tok.config.frontend.sample_rate
    where = job.source_options()
    items = sources_for(tok.config, [Path(p) for p in job.audio], outputs=False, options=where)
    suffixes = input_suffixes(tok.config)
    folder = OutputFolder(root / "original")
    folder.create()
    links = {}
    for i, item in enumerate(items):
        key = item.stem(suffixes).as_posix()
        target = folder.file(root / "original" / f"{i:04d}.wav")
        write_wav(target, source_audio(item, rate), rate)
        links[key] = f"original/{i:04d}.wav"
    return links
