"""tokquant's jobs as a library: one request object per job, a plain dataclass whose
defaults are the CLI's, with ``run(progress=None)`` returning the job's report.

A command of the CLI is the same request built from its flags: ``tokquant encode CKPT
wavs/ --out tok/ --shards`` is ``EncodeJob("CKPT", ["wavs/"], "tok/", shards=True).run()``
and writes the same bytes. A job loads its checkpoint, reads its sources, splits ranks
and owns its output folder; it never prints (``progress`` gets its counts).

Example:
    >>> from tokquant.jobs import EncodeJob, ExportJob
    >>> report = EncodeJob("model.safetensors", ["wavs/"], "tokens/", shards=True).run()
    >>> ExportJob("tokens/", "tokens-hf", to="parquet", offsets=True).run()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Request objects (and what they return), loaded on first use: the CLI imports this
#: package before it knows whether it needs torch.
_LAZY = {
    "EncodeJob": "tokquant.jobs.encode",
    "DecodeJob": "tokquant.jobs.decode",
    "StatsJob": "tokquant.jobs.stats",
    "AuditJob": "tokquant.jobs.audit",
    "ExportJob": "tokquant.jobs.export",
    "TrainJob": "tokquant.jobs.train",
    "TrainReport": "tokquant.jobs.report",
    "TrainVocoderJob": "tokquant.jobs.train_vocoder",
    "EvalJob": "tokquant.jobs.evaluate",
    "EvalReport": "tokquant.jobs.report",
    "CompareJob": "tokquant.jobs.compare",
    "CompareReport": "tokquant.jobs.report",
    "InfoJob": "tokquant.jobs.inspect",
    "VerifyJob": "tokquant.jobs.inspect",
    "MergeJob": "tokquant.jobs.inspect",
    "ImportJob": "tokquant.jobs.import_peer",
    "RunReport": "tokquant.jobs.report",
    "StatsReport": "tokquant.runners.stats",
    "AuditReport": "tokquant.runners.audit",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from tokquant.jobs.audit import AuditJob  # noqa: F401
    from tokquant.jobs.compare import CompareJob  # noqa: F401
    from tokquant.jobs.decode import DecodeJob  # noqa: F401
    from tokquant.jobs.encode import EncodeJob  # noqa: F401
    from tokquant.jobs.evaluate import EvalJob  # noqa: F401
    from tokquant.jobs.export import ExportJob  # noqa: F401
    from tokquant.jobs.import_peer import ImportJob  # noqa: F401
    from tokquant.jobs.inspect import InfoJob, MergeJob, VerifyJob  # noqa: F401
    from tokquant.jobs.report import (  # noqa: F401
        CompareReport,
        EvalReport,
        RunReport,
        TrainReport,
    )
    from tokquant.jobs.stats import StatsJob  # noqa: F401
    from tokquant.jobs.train import TrainJob  # noqa: F401
    from tokquant.jobs.train_vocoder import TrainVocoderJob  # noqa: F401
    from tokquant.runners.audit import AuditReport  # noqa: F401
    from tokquant.runners.stats import StatsReport  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokquant.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
