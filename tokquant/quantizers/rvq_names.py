"""RVQ checkpoints name their tensors as tokquant 0.1 did (``codebooks.{l}``,
``ema_count_{l}``, ``ema_sum_{l}``, ``project_in.{l}.*``, ``project_out.{l}.*``); these
state-dict hooks translate to and from the module layout (``levels.{l}.vectors``, ...),
so the file format stays put while the modules move."""

from __future__ import annotations

import re
from typing import Any

from torch import nn

_V1_RULES = [  # (module-layout name, version-1 name), as regex and replacement pairs
    (r"levels\.(\d+)\.vectors", r"codebooks.\1"),
    (r"levels\.(\d+)\.ema_(count|sum)", r"ema_\2_\1"),
    (r"levels\.(\d+)\.project_(in|out)\.(\w+)", r"project_\2.\1.\3"),
]
_FROM_V1_RULES = [
    (r"codebooks\.(\d+)", r"levels.\1.vectors"),
    (r"ema_(count|sum)_(\d+)", r"levels.\2.ema_\1"),
    (r"project_(in|out)\.(\d+)\.(\w+)", r"levels.\2.project_\1.\3"),
]


def _rename(state: dict[str, Any], prefix: str, rules: list[tuple[str, str]]) -> None:
    for key in [k for k in state if k.startswith(prefix)]:
        local = key[len(prefix) :]
        for pattern, replacement in rules:
            new, hits = re.subn(rf"^{pattern}$", replacement, local)
            if hits:
                state[prefix + new] = state.pop(key)
                break


def to_v1_names(module: nn.Module, state: dict[str, Any], prefix: str, _meta: Any) -> None:
    _rename(state, prefix, _V1_RULES)


def from_v1_names(module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
    _rename(state, prefix, _FROM_V1_RULES)
