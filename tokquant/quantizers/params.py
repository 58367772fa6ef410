"""Each quantizer family's arguments, declared once, with their checks.

A family's dataclass (:class:`BSQParams`, :class:`LFQParams`, :class:`RVQParams`) has one
field per constructor argument, so a YAML ``quantizer:`` section, a checkpoint and
``BSQ(...)`` all name the same things. Every range lives in a field's ``check``; the
constructors and the config loader call the same :func:`validate`, which words its error
for the caller: ``code_dim must be in [1, 64]. Found: 65`` from Python, or
``quantizer.code_dim: must be an integer in [1, 64], found 65`` from a config file.

This module imports nothing heavy, so configs can be read without torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tokquant.checks import Check, Problem, in_interval, int_in, number, one_of, optional
from tokquant.errors import ConfigError

#: Largest code_dim of BSQ/LFQ (bits per code) and largest exact-entropy width.
MAX_CODE_DIM = 64
EXACT_MAX_BITS = 20
ENTROPY_MODES = ("auto", "exact", "factorized")
LFQ_ACTIVATION_NAMES = ("identity", "tanh", "sigmoid")


def param(
    default: Any, check: Check | None = None, *, recorded: bool = True, later: bool = False
) -> Any:
    """A dataclass field with its check; ``recorded=False`` leaves it out of
    :meth:`Params.record` while it has its default (what token files describe);
    ``later=True`` marks a key added after format version 1, which a checkpoint stores
    only away from its default (so checkpoints that do not use it keep their bytes)."""
    return field(default=default, metadata={"check": check, "recorded": recorded, "later": later})


class Params:
    """Base of the family dataclasses."""

    family: ClassVar[str] = ""

    def validate(self, prefix: str | None = None) -> None:
        """Check every field; ``prefix`` (``"quantizer."``) words errors for a config file."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check = f.metadata.get("check")
            if check is not None:
                key = None if prefix is None else prefix + f.name
                check(getattr(self, f.name), Problem(f.name, key))
        self.check_together(prefix)

    def check_together(self, prefix: str | None) -> None:
        """Checks that involve several fields."""

    def for_features(self, feature_dim: int) -> Params:
        """These params with what the features decide filled in (RVQ: its dim)."""
        return self

    @property
    def input_dim(self) -> int | None:
        """The dim of the vectors the quantizer takes."""
        raise NotImplementedError

    def record(self) -> dict[str, Any]:
        """Plain JSON of the arguments that describe the codes (token files, manifests)."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("recorded", True) or value != f.default:
                out[f.name] = value
        return out


@dataclass
class BinaryParams(Params):
    """Arguments shared by BSQ and LFQ."""

    code_dim: int = param(16, int_in(1, MAX_CODE_DIM))
    entropy_loss_weight: float = param(0.1, number(positive=False))
    diversity_gamma: float = param(1.0, number(positive=False))
    entropy: str = param("auto", one_of(*ENTROPY_MODES))
    #: Bits per group of the factorised codebook entropy; None: ``min(code_dim, 8)``.
    group_size: int | None = param(None)
    #: Softmax sharpness of the entropy terms; the default of ``forward``'s argument.
    inv_temperature: float = param(100.0, number(positive=True), recorded=False)

    def check_together(self, prefix: str | None) -> None:
        if self.entropy == "exact" and self.code_dim > EXACT_MAX_BITS:
            if prefix is not None:
                raise ConfigError(
                    f"{prefix}entropy: 'exact' needs code_dim <= {EXACT_MAX_BITS}; use factorized"
                )
            raise ValueError(
                f"entropy='exact' supports code_dim <= {EXACT_MAX_BITS} (it builds a softmax "
                f"over 2^code_dim codes). Found code_dim={self.code_dim}; use entropy='factorized'"
            )
        if self.group_size is not None:
            key = None if prefix is None else f"{prefix}group_size"
            int_in(1, min(self.code_dim, EXACT_MAX_BITS))(
                self.group_size, Problem("group_size", key)
            )

    @property
    def input_dim(self) -> int | None:
        return self.code_dim


@dataclass
class BSQParams(BinaryParams):
    family: ClassVar[str] = "bsq"

    #: Weight of ``mean((u - sg(q))^2)`` on the sphere; 0 is SpeechBrain's loss. Not
    #: LFQ's ``commitment_loss_weight``: every checkpoint's flat section holds that key at
    #: LFQ's default, so a BSQ checkpoint would read it back as 0.25.
    sphere_commitment_weight: float = param(0.0, number(positive=False), recorded=False, later=True)


@dataclass
class LFQParams(BinaryParams):
    family: ClassVar[str] = "lfq"

    scale: float = param(1.0, number(positive=True))
    #: None, or the name of the activation applied before the straight-through step.
    activation: str | None = param(None, optional(one_of(*LFQ_ACTIVATION_NAMES)))
    commitment_loss_weight: float = param(0.25, number(positive=False))


@dataclass
class RVQParams(Params):
    family: ClassVar[str] = "rvq"

    num_levels: int = param(8, int_in(1, 64))
    #: Codes per level: one size, or a list of ``num_levels`` sizes.
    num_embeddings: int | list[int] = param(1024)
    #: The vectors' dim; in a config, None takes the features' (or projection's) dim.
    embedding_dim: int | None = param(None, optional(int_in(1, 1 << 16)))
    beta: float = param(0.25, number(positive=False))
    ema_decay: float | None = param(None, recorded=False)
    dead_code_threshold: float = param(0.0, in_interval(0.0, 1.0, closed_hi=False), recorded=False)
    dead_code_window: int = param(100, int_in(1, 10**9), recorded=False)
    quantizer_dropout: float = param(0.0, in_interval(0.0, 1.0, closed_hi=True), recorded=False)
    codebook_dim: int | None = param(None, optional(int_in(1, 1 << 16)), recorded=False)
    normalized: bool = param(False, recorded=False)
    #: Beam width the codebooks are fitted for (k-means init and training assignments)
    #: and the default of ``encode``; 1 is greedy.
    beam: int = param(1, int_in(1, 64), recorded=False, later=True)

    def check_together(self, prefix: str | None) -> None:
        fail = Problem("num_embeddings", None if prefix is None else f"{prefix}num_embeddings")
        sizes = self.num_embeddings
        if isinstance(sizes, (list, tuple)):
            if len(sizes) != self.num_levels:
                if prefix is not None:
                    raise ConfigError(
                        f"{prefix}num_embeddings: list must have num_levels={self.num_levels} "
                        f"entries, found {len(sizes)}"
                    )
                raise ValueError(
                    f"num_embeddings list must have one size per level (length "
                    f"{self.num_levels}). Found length {len(sizes)}"
                )
        for k in sizes if isinstance(sizes, (list, tuple)) else [sizes]:
            int_in(2, 1 << 20)(k, fail)
        if self.beam > 1 and (self.codebook_dim is not None or self.normalized):
            Problem("beam", None if prefix is None else f"{prefix}beam")(
                "needs plain levels (no codebook_dim, not normalized)",
                "> 1 needs plain levels (no codebook_dim, not normalized)",
                self.beam,
            )
        decay = self.ema_decay
        if decay is not None and not (isinstance(decay, float) and 0.0 < decay < 1.0):
            Problem("ema_decay", None if prefix is None else f"{prefix}ema_decay")(
                "must be null or in (0, 1)", "must be None or in (0, 1)", decay
            )

    def for_features(self, feature_dim: int) -> RVQParams:
        return dataclasses.replace(self, embedding_dim=self.embedding_dim or feature_dim)

    @property
    def input_dim(self) -> int | None:
        return self.embedding_dim

    def sizes(self) -> list[int]:
        k = self.num_embeddings
        return list(k) if isinstance(k, (list, tuple)) else [k] * self.num_levels

    def record(self) -> dict[str, Any]:
        out = super().record()
        sizes = self.sizes()
        out["num_embeddings"] = sizes[0] if len(set(sizes)) == 1 else sizes
        return out


#: FSQ's bound (vector-quantize-pytorch's, eps = 1e-3) overshoots the grid by a whole
#: step beyond 1,000 values per dim: (L - 1) / 2 * 1.001 rounds past (L - 1) / 2.
MAX_FSQ_LEVEL = 1000


def _levels_check(value: Any, fail: Problem) -> None:
    ok = (
        isinstance(value, (list, tuple))
        and len(value) >= 1
        and all(
            isinstance(v, int) and not isinstance(v, bool) and 3 <= v <= MAX_FSQ_LEVEL
            for v in value
        )
    )
    if not ok:
        fail(
            f"must be a list of integers in [3, {MAX_FSQ_LEVEL}] (values per dim; 2 levels: "
            f"use bsq)",
            f"must be a non-empty list of ints in [3, {MAX_FSQ_LEVEL}]",
            value,
        )
    elif len(value) > MAX_CODE_DIM:
        fail(
            f"must have at most {MAX_CODE_DIM} dims",
            f"must have at most {MAX_CODE_DIM} dims",
            value,
        )


@dataclass
class FSQParams(Params):
    family: ClassVar[str] = "fsq"

    #: Values per dim; the quantizer's dim is ``len(levels)``.
    levels: list[int] = field(
        default_factory=lambda: [8, 5, 5, 5], metadata={"check": _levels_check, "recorded": True}
    )

    @property
    def input_dim(self) -> int | None:
        return len(self.levels)


FAMILY_PARAMS: dict[str, type[Params]] = {
    p.family: p for p in (BSQParams, LFQParams, RVQParams, FSQParams)
}
