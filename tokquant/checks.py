"""Argument checks written once, worded for whoever passed the value.

A check raises for a bad value. Called with a dotted config key it raises
:class:`~tokquant.errors.ConfigError` (``quantizer.code_dim: must be an integer in
[1, 64], found 65``); called for a Python argument it raises the ``ValueError`` or
``TypeError`` PyTorch users expect (``code_dim must be in [1, 64]. Found: 65``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tokquant.errors import ConfigError


class Problem:
    """Raises a bad-argument error worded for the caller (``key`` set: a config file)."""

    def __init__(self, name: str, key: str | None) -> None:
        self.name, self.key = name, key

    def __call__(self, keyed: str, plain: str, value: Any, kind: type = ValueError) -> None:
        if self.key is not None:
            raise ConfigError(f"{self.key}: {keyed}, found {value!r}")
        raise kind(f"{self.name} {plain}. Found: {value!r}")


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
            fail(f"must be in [{lo:g}, {hi:g}{bracket}", f"must be in [{lo:g}, {hi:g}{bracket}",
                 value)  # fmt: skip

    return check


def optional(check: Check) -> Check:
    def maybe(value: Any, fail: Problem) -> None:
        if value is not None:
            check(value, fail)

    return maybe


def check_key(key: str, value: Any, check: Check) -> None:
    """Run ``check`` on a config value, naming its dotted ``key``."""
    check(value, Problem(key, key))
