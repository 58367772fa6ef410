"""The audit job: do a checkpoint's tokens depend on how they were computed?

For each input, its codes encoded alone (whole file, one call) are the reference; the audit
then encodes every input together in batches (as ``encode`` does), and each alone again read
in small chunks, and where a GPU is present on the other device, and reports the share of
frames whose codes are the same. tokquant's own front ends and quantizers are built to
give 100% on the first two (block-aligned features, fixed SSL windows, padded encode
calls); a front end that looked across batch or chunk boundaries would show here.

A front end that reads long files in windows with context (SSL models, codecs) gets one
more way, ``whole``: each input longer than one window is also encoded in a single window
as long as the file, and the windowed codes are compared with those. That is the
agreement the window's context buys (100% where the network's reach is inside it; a
recurrent or wide-attention encoder can differ near window edges). Inputs of one window
are that same single call, and inputs over :data:`AUDIT_WHOLE_WINDOWS` windows would need
the memory windows exist to bound, so neither is measured (``None`` in the row).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tokquant.api import open_tokenizer
from tokquant.devices import use_threads
from tokquant.errors import InputError
from tokquant.jobs.report import NoProgress, Progress
from tokquant.runners.batcher import encode_items, encode_streamed
from tokquant.runners.each import attempt
from tokquant.runners.features import FeatureReader
from tokquant.sources import Source, sources_for
from tokquant.tokenizer.model import Tokenizer

if TYPE_CHECKING:
    from tokquant.jobs.audit import AuditJob

#: Small enough that every input of a few seconds is read in several chunks.
AUDIT_CHUNK_FRAMES = 64
#: The longest input (in windows) the ``whole`` way encodes in one window.
AUDIT_WHOLE_WINDOWS = 4


@dataclass
class AuditReport:
    """Per input and overall: frames whose codes equal the alone-and-whole reference."""

    ways: list[str]
    rows: list[dict] = field(default_factory=list)  # {"input", "frames", way: share | None}
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint_id: str | None = None

    def overall(self) -> dict[str, float | None]:
        """Each way's share over the frames it measured (None: it measured none)."""
        shares: dict[str, float | None] = {}
        for way in self.ways:
            measured = [r for r in self.rows if r[way] is not None]
            frames = sum(r["frames"] for r in measured)
            shares[way] = sum(r[way] * r["frames"] for r in measured) / frames if frames else None
        return shares


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 0.0
    return float((a == b).all(axis=1).mean()) if a.shape[0] else 1.0


def audit(
    tok: Tokenizer,
    items: list[Source],
    *,
    layout: str | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Compare each input's codes alone with its codes batched, chunk-read and (with CUDA)
    on the other device."""
    progress = progress or NoProgress()
    reader = FeatureReader.of(tok, layout)
    other = _other_device(tok)
    other_reader = FeatureReader.of(other[1], layout) if other else None
    whole = _in_one_window(tok)
    whole_reader = FeatureReader.of(whole, layout) if whole else None
    ways = (
        ["batched", "chunked"]
        + (["whole"] if whole else [])
        + ([f"on {other[0]}"] if other else [])
    )
    report = AuditReport(ways)
    start = time.perf_counter()
    progress.start("audit", 2 * len(items))
    alone: dict[int, np.ndarray] = {}
    for i, item in enumerate(items):
        codes = attempt(lambda: encode_streamed(tok, reader, item, chunk_frames=None),  # noqa: B023
                        report.failures)  # fmt: skip
        if codes is not None:
            alone[i] = codes
        progress.advance()
    if not alone:  # an agreement of 0.00% over no frames would read as a verdict
        more = f" (and {len(report.failures) - 1} more)" if len(report.failures) > 1 else ""
        raise InputError(f"nothing to audit, no input could be encoded: {report.failures[0]}{more}")
    batched = {i: enc.codes for i, enc in enumerate(encode_items(tok, items, layout=layout))}
    for i, reference in alone.items():
        item = items[i]
        row = {
            "input": item.origin if item.channel is None else f"{item.origin}#ch{item.channel}",
            "frames": int(reference.shape[0]),
        }
        row["batched"] = _agreement(reference, batched[i]) if batched[i] is not None else 0.0
        chunked = encode_streamed(tok, reader, item, chunk_frames=AUDIT_CHUNK_FRAMES)
        row["chunked"] = _agreement(reference, chunked)
        if whole:
            windows = len(tok.frontend().windows(row["frames"]))
            row["whole"] = (
                _agreement(encode_streamed(whole, whole_reader, item, chunk_frames=None), reference)
                if 1 < windows <= AUDIT_WHOLE_WINDOWS
                else None
            )
        if other:
            codes = encode_streamed(other[1], other_reader, item, chunk_frames=None)
            row[ways[-1]] = _agreement(reference, codes)
        report.rows.append(row)
        progress.advance()
    report.seconds = time.perf_counter() - start
    return report


def _in_one_window(tok: Tokenizer) -> Tokenizer | None:
    """``tok`` with a front end that reads every file in one window (None: ``tok``'s
    front end has no windows). Shares ``tok``'s weights and network."""
    if tok.config.frontend.kind not in ("ssl", "codec"):
        return None
    front = copy.copy(tok.frontend())
    front.window = 1 << 40  # frames: one window whatever the file
    whole = copy.copy(tok)
    whole._frontend = front
    return whole


def _other_device(tok: Tokenizer) -> tuple[str, Tokenizer] | None:
    """A copy of the tokenizer on the other device (CPU <-> CUDA), when CUDA is present;
    it builds its own front end there."""
    if not torch.cuda.is_available():
        return None
    there = torch.device("cpu") if tok.device.type == "cuda" else torch.device("cuda")
    return there.type, copy.deepcopy(tok).to(there)


def run_audit(job: AuditJob, progress: Progress | None = None) -> AuditReport:
    """The report, its ``checkpoint_id`` set; per-input failures are in it."""
    use_threads(job.threads)
    tok = open_tokenizer(job.checkpoint, job.device, job.ssl_weights)
    where = job.source_options()
    items = sources_for(
        tok.config,
        [Path(p) for p in job.inputs],
        channels=job.channels,
        outputs=False,
        options=where,
    )
    report = audit(tok, items, progress=progress, layout=job.feature_layout)
    report.checkpoint_id = tok.checkpoint_id
    return report
