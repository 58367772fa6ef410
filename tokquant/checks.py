"""Argument checks written once, worded for whoever passed the value.

A check raises for a bad value. Called with a dotted config key it raises
:class:`~tokquant.errors.ConfigError` (``quantizer.code_dim: must be an integer in
[1, 64], found 65``); called for a Python argument it raises the ``ValueError`` or
``TypeError`` PyTorch users expect (``code_dim must be in [1, 64]. Found: 65``).
"""

from __future__ import annotations

import math
import os
import reprlib
from collections.abc import Callable
from typing import Any

from tokquant.errors import ConfigError

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 1, 6, 6, 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 60, 60, 40


def shown(value: Any) -> str:
    """``repr(value)`` cut short: a message quotes what it was given, and a config's value
    can be a list of 10,000 levels, a 5,000-digit integer or a YAML alias bomb whose full
    repr would not fit in memory."""
    return _SHOWN.repr(value)


class Problem:
    """Raises a bad-argument error worded for the caller (``key`` set: a config file)."""

    def __init__(self, name: str, key: str | None) -> None:
        self.name, self.key = name, key

    def __call__(self, keyed: str, plain: str, value: Any, kind: type = ValueError) -> None:
        if self.key is not None:
            raise ConfigError(f"{self.key}: {keyed}, found {shown(value)}")
        raise kind(f"{self.name} {plain}. Found: {shown(value)}")


Check = Callable[[Any, Problem], None]


def int_in(lo: int, hi: int) -> Check:
    def check(value: Any, fail: Problem) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"must be an integer in [{lo}, {hi}]", "must be an int", value, TypeError)
        if not lo <= value <= hi:
            fail(f"must be an integer in [{lo}, {hi}]", f"must be in [{lo}, {hi}]", value)

    return check


def number(*, positive: bool) -> Check:
    text = "a finite number > 0" if positive else "a finite number >= 0"

    def check(value: Any, fail: Problem) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or (value <= 0 if positive else value < 0):
            fail(f"must be {text}", f"must be {text}", value)

    return check


def one_of(*choices: Any) -> Check:
    def check(value: Any, fail: Problem) -> None:
        if value not in choices:
            shown = ", ".join(map(str, choices))
            fail(f"must be one of {shown}", f"must be one of {shown}", value)

    return check


def in_interval(lo: float, hi: float, *, closed_hi: bool) -> Check:
    bracket = "]" if closed_hi else ")"

    def check(value: Any, fail: Problem) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not (lo <= value <= hi if closed_hi else lo <= value < hi):
            fail(
                f"must be in [{lo:g}, {hi:g}{bracket}",
                f"must be in [{lo:g}, {hi:g}{bracket}",
                value,
            )

    return check


def optional(check: Check) -> Check:
    def maybe(value: Any, fail: Problem) -> None:
        if value is not None:
            check(value, fail)

    return maybe


def check_setting(key: str, value: Any, check: Check) -> None:
    """Run ``check`` on a config value, naming its dotted ``key``."""
    check(value, Problem(key, key))


def machine_memory() -> int:
    """This machine's RAM in bytes."""
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def format_bytes(count: float) -> str:
    """``1.5 GiB``: a size for a message."""
    if not math.isfinite(count):
        return "more bytes than exist"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024:
            return f"{int(count)} B" if unit == "B" else f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.3g} PiB"


def coerce_field(key: str, value: Any, annotation: str) -> Any:
    """Check a YAML value against the field's annotation; ints are accepted as floats
    and strings such as ``1e-3`` (which YAML 1.1 reads as text) as numbers."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise ConfigError(f"{key}: must not be null")
    if "bool" in kinds:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, found {shown(value)}")
        return value
    if "list[int]" in kinds and isinstance(value, list):
        return [_as_int(key, v) for v in value]
    if "int" in kinds:
        return _as_int(key, value)
    if "float" in kinds:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{key}: must be a number, found {shown(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, found {shown(value)}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a string, found {shown(value)}")
    return value


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: must be an integer, found {shown(value)}")
    return value
