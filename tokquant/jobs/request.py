"""What every job request checks when it is made: each field's type and choice.

A request's fields come from Python callers, and through them from YAML, JSON and
environment variables, where ``"false"`` is a truthy string and ``"Split"`` is no
channel mode. Nothing downstream may meet such a value: ``overwrite="false"`` would
rewrite every output, ``channels="bogus"`` would silently mix. So :class:`Request`
checks every field against its annotation (and the allowed values of the enumerated
ones, from :mod:`tokquant.choices`) in ``__post_init__``, in one line naming the
request, the field and the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from tokquant import choices
from tokquant.checks import shown
from tokquant.errors import InputError

#: Fields whose values are one of a fixed set (None also allowed where annotated).
CHOICES: dict[str, tuple[str, ...]] = {
    "channels": choices.CHANNEL_MODES,
    "engine": choices.ENGINES,
    "feature_layout": choices.FEATURE_LAYOUTS,
    "layout": choices.TOKEN_LAYOUTS,
    "to": choices.EXPORT_FORMATS,
    "kind": choices.PEER_KINDS,
}
#: Integer fields that count something and must be at least 1.
COUNTS = {"shard_size", "num_shards", "levels", "beam", "batch_frames", "batch", "threads",
          "segment_frames", "max_frames"}  # fmt: skip


class Request:
    """Base of the job requests (dataclasses): fields checked when the request is made."""

    def __post_init__(self) -> None:
        check_request(self)


def check_request(request: Any) -> None:
    """InputError (a ValueError) for the first field whose value its annotation or its
    choices do not allow."""
    for field in dataclasses.fields(request):
        value = getattr(request, field.name)
        where = f"{type(request).__name__}.{field.name}"
        annotation = str(field.type)
        kinds = [k.strip() for k in annotation.split("|")] if "[" not in annotation else None
        if value is None:
            if "None" not in annotation.replace("None]", ""):
                raise InputError(f"{where} must not be None")
            continue
        _check_value(where, value, annotation, kinds)
        if field.name in CHOICES and isinstance(value, str) and value not in CHOICES[field.name]:
            raise InputError(
                f"{where} must be one of {', '.join(CHOICES[field.name])}, found {shown(value)}"
            )
        if field.name in COUNTS and isinstance(value, int) and value < 1:
            raise InputError(f"{where} must be at least 1, found {value}")


def _check_value(where: str, value: Any, annotation: str, kinds: list[str] | None) -> None:
    if annotation.startswith("list[") or annotation.startswith("tuple["):
        if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, (list, tuple)):
            raise InputError(f"{where} must be a list, found {shown(value)}")
        item = "float" if "float" in annotation else "str | Path"
        for element in value:
            _check_value(where, element, item, [k.strip() for k in item.split("|")])
        return
    assert kinds is not None
    if "bool" in kinds:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be True or False, found {shown(value)}")
    elif "int" in kinds:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, found {shown(value)}")
    elif "float" in kinds:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InputError(f"{where} must be a finite number, found {shown(value)}")
    elif "Path" in kinds:
        if not isinstance(value, (str, os.PathLike)):
            raise InputError(f"{where} must be a path, found {shown(value)}")
    elif "str" in kinds and not isinstance(value, str):
        raise InputError(f"{where} must be a string, found {shown(value)}")
