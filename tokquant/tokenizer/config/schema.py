"""Tokenizer configs: small dataclasses, loaded from YAML with strict validation.

Every key is checked on load: an unknown key or a bad value raises ``ConfigError`` with a
one-line message naming the dotted key (``quantizer.code_dim``), so a typo in a config
never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokquant.checks import (
    check_setting,
    coerce_field,
    int_in,
    number,
    one_of,
    shown,
)
from tokquant.choices import FEATURE_LAYOUTS
from tokquant.errors import ConfigError
from tokquant.quantizers.params import FAMILY_PARAMS, BSQParams, Params
from tokquant.storage.safe_yaml import load_yaml
from tokquant.tokenizer.config.frontend import FrontendConfig, stored

PROJECTIONS = ("linear", "mlp", "none")


def _flat_quantizer_fields() -> dict[str, dataclasses.Field]:
    """Every family's fields by name: the keys a ``quantizer:`` section may hold."""
    fields: dict[str, dataclasses.Field] = {}
    for cls in FAMILY_PARAMS.values():
        for f in dataclasses.fields(cls):
            fields.setdefault(f.name, f)
    return fields


def _quantizer_from_dict(data: Any) -> Params:
    """Build the family's params from a flat section; keys of other families are type
    checked and otherwise ignored (a checkpoint stores every family's keys)."""
    if not isinstance(data, dict):
        raise ConfigError(f"quantizer: must be a mapping, found {type(data).__name__}")
    fields = _flat_quantizer_fields()
    family = data.get("family", "bsq")
    if family not in FAMILY_PARAMS:
        raise ConfigError(
            f"quantizer.family: must be one of {', '.join(FAMILY_PARAMS)}, found {shown(family)}"
        )
    cls = FAMILY_PARAMS[family]
    own = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key == "family":
            continue
        if key not in fields:
            raise ConfigError(
                f"quantizer.{key}: unknown key (expected one of: "
                f"{', '.join(sorted([*fields, 'family']))})"
            )
        value = coerce_field(f"quantizer.{key}", value, str(fields[key].type))
        if key in own:
            kwargs[key] = value
    params = cls(**kwargs)
    params.validate("quantizer.")
    return params


#: The families of format version 1, whose keys every checkpoint's flat section holds.
#: A later family's keys are stored only in its own checkpoints, so adding a family
#: leaves the bytes (and ids) of the others' checkpoints as they were.
_V1_FAMILIES = ("bsq", "lfq", "rvq")


def _quantizer_to_dict(params: Params) -> dict[str, Any]:
    """The flat section checkpoints store: the v1 families' defaults, this family's values."""
    flat = {
        f.name: f.default
        for family in _V1_FAMILIES
        for f in dataclasses.fields(FAMILY_PARAMS[family])
        if not f.metadata.get("later")
    }
    return {**flat, **stored(params), "family": params.family}


@dataclass
class ProjectionConfig:
    """Map from normalised features into the quantizer and back out."""

    kind: str = "linear"
    hidden: int = 256
    #: Hidden layers of an ``mlp`` projection (each ``hidden`` wide, GELU).
    depth: int = field(default=1, metadata={"later": True})

    def validate(self) -> None:
        _choice("projection.kind", self.kind, PROJECTIONS)
        _int_range("projection.hidden", self.hidden, 1, 1 << 16)
        _int_range("projection.depth", self.depth, 1, 16)


@dataclass
class FeatureConfig:
    """What the tokenizer expects as input. ``dim: null`` takes it from the data."""

    dim: int | None = None
    frame_rate: float | None = None
    layout: str = "tc"  # tc = [frames, dim], ct = [dim, frames]; encode's default

    def validate(self) -> None:
        _choice("features.layout", self.layout, FEATURE_LAYOUTS)
        if self.dim is not None:
            _int_range("features.dim", self.dim, 1, 1 << 16)
        if self.frame_rate is not None:
            _positive("features.frame_rate", self.frame_rate)


@dataclass
class TrainConfig:
    """Optimisation settings; CLI flags override them."""

    steps: int = 2000
    batch_frames: int = 4096
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    val_fraction: float = 0.05
    eval_every: int = 100
    kmeans_iters: int = 20
    # Share of each batch's frames replaced by a random point on the segment to the next
    # frame of the same input (a fresh uniform weight each time): the quantizer then sees
    # the paths between frames, not only the frames, and fits unseen voices better.
    interpolate: float = 0.0

    def validate(self) -> None:
        _int_range("train.steps", self.steps, 0, 10**9)
        _int_range("train.batch_frames", self.batch_frames, 1, 1 << 26)
        _positive("train.lr", self.lr)
        _non_negative("train.weight_decay", self.weight_decay)
        _int_range("train.seed", self.seed, 0, 2**63 - 1)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"train.val_fraction: must be in [0, 1), found {self.val_fraction}")
        _int_range("train.eval_every", self.eval_every, 1, 10**9)
        _int_range("train.kmeans_iters", self.kmeans_iters, 0, 10**4)
        if not 0.0 <= self.interpolate <= 1.0:
            raise ConfigError(f"train.interpolate: must be in [0, 1], found {self.interpolate}")


@dataclass
class TokenizerConfig:
    """Everything a checkpoint needs to rebuild its tokenizer (plus how it was trained)."""

    quantizer: Params = field(default_factory=BSQParams)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> TokenizerConfig:
        """Check every section (errors name the dotted key); fill in what the front end
        fixes (``features.dim``, ``features.frame_rate``)."""
        self.quantizer.validate("quantizer.")
        self.projection.validate()
        self.features.validate()
        self.frontend.validate()
        self.train.validate()
        fe = self.frontend
        if fe.kind != "none":
            # The front end fixes what the tokenizer sees; a conflicting value is a mistake.
            if self.features.dim not in (None, fe.feature_dim):
                raise ConfigError(
                    f"features.dim: {self.features.dim} conflicts with the {fe.kind} front end "
                    f"({fe.feature_dim} per frame)"
                )
            self.features.dim = fe.feature_dim
            self.features.frame_rate = fe.frame_rate
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "quantizer": _quantizer_to_dict(self.quantizer),
            "projection": stored(self.projection),
            "frontend": self.frontend.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> TokenizerConfig:
        return _build(cls, data, "").validate()

    @classmethod
    def from_yaml(cls, path: str | Path) -> TokenizerConfig:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
        data = load_yaml(path, raw)
        try:
            return cls.from_dict(data or {})
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


# Generic builder and checks -------------------------------------------------------------


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "config"
        raise ConfigError(f"{where}: must be a mapping, found {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{prefix}{key}: unknown key (expected one of: {', '.join(sorted(fields))})"
            )
        sub = _SECTIONS.get(key) if not prefix else None
        if key == "quantizer" and not prefix:
            kwargs[key] = _quantizer_from_dict(value)
        elif sub is not None:
            kwargs[key] = _build(sub, value, f"{key}.")
        else:
            kwargs[key] = coerce_field(f"{prefix}{key}", value, str(fields[key].type))
    return cls(**kwargs)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    check_setting(key, value, one_of(*choices))


def _int_range(key: str, value: Any, lo: int, hi: int) -> None:
    check_setting(key, value, int_in(lo, hi))


def _positive(key: str, value: float) -> None:
    check_setting(key, value, number(positive=True))


def _non_negative(key: str, value: float) -> None:
    check_setting(key, value, number(positive=False))


_SECTIONS: dict[str, type] = {
    "projection": ProjectionConfig,
    "features": FeatureConfig,
    "frontend": FrontendConfig,
    "train": TrainConfig,
}
