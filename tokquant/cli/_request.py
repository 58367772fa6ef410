"""A job's request from a command's parameters, which are named as the job's fields."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, TypeVar

T = TypeVar("T")


def request(job: type[T], params: dict[str, Any], **changes: Any) -> T:
    """``job`` built from the parameters it has fields for (a choice as its value);
    ``changes`` replace or add fields. The CLI's own options (``--json``, ``--quiet``)
    are not fields, so they stay behind."""
    fields = {f.name for f in dataclasses.fields(job)}  # type: ignore[arg-type]
    values = {k: v.value if isinstance(v, Enum) else v for k, v in params.items() if k in fields}
    return job(**{**values, **changes})
