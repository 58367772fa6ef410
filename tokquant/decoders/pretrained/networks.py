"""Pretrained mel vocoders users already have, Vocos (``charactr/vocos-mel-24khz``) and
BigVGAN v2 (``nvidia/bigvgan_v2_24khz_100band_256x``, ``..._22khz_80band_256x``), as
decoders for tokenizers whose front end computes that vocoder's mel exactly.

Each package's mel is a set of front-end options (:func:`mel_frontend`): Vocos takes
torchaudio's magnitude mel (HTK scale, no filter norm) on ``center=True`` frames, log
clipped at 1e-7; BigVGAN takes librosa's Slaney filters on frames mirrored by
``(n_fft - hop) / 2``, the magnitude as ``sqrt(|X|^2 + 1e-9)``, log clipped at 1e-5. A
tokenizer trained with those options (``configs/logmel-vocos-*.yaml``,
``configs/logmel-bigvgan-*.yaml``) decodes to the features the vocoder was trained on,
and :func:`check_frontend` refuses any other tokenizer in one line.

The models are the packages' own classes (optional extras, imported when used), built
from a config checked here rather than from the class paths it names, and loaded with
the weights-only reader of :mod:`tokquant.formats.pretrained_vocoder`.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tokquant.checks import shown
from tokquant.errors import FormatError, InputError
from tokquant.formats.pretrained_vocoder import PretrainedFolder, read_pretrained
from tokquant.formats.vocoder import check_weight
from tokquant.tokenizer.config import FrontendConfig

NAMES = {"vocos": "Vocos", "bigvgan": "BigVGAN"}
#: The front-end fields a pretrained vocoder's mel fixes.
MEL_FIELDS = (
    *("kind", "sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max"),
    *("log_floor", "power", "power_eps", "mel_scale", "mel_norm", "reflect_pad"),
)
#: Vocos' classes, the only ones its config may name.
_VOCOS_CLASSES = {
    "feature_extractor": "vocos.feature_extractors.MelSpectrogramFeatures",
    "backbone": "vocos.models.VocosBackbone",
    "head": "vocos.heads.ISTFTHead",
}


@dataclass
class DecoderShape:
    """What :func:`~tokquant.decoders.chunks.vocode` reads of any decoder."""

    feature_dim: int
    hop: int
    sample_rate: int


class PretrainedVocoder(nn.Module):
    """Log-mels ``[B, T, n_mels]`` -> audio ``[B, ~T * hop]`` through a Vocos or BigVGAN
    model. Its sample ``n`` is sample ``n`` of the audio the mels came from (both
    packages train so), so decoded audio needs no shift."""

    aligned_to_input = True

    def __init__(self, kind: str, source: str, net: nn.Module, frontend: FrontendConfig) -> None:
        super().__init__()
        self.kind, self.source, self.net, self.frontend = kind, source, net, frontend
        self.config = DecoderShape(frontend.n_mels, frontend.hop_length, frontend.sample_rate)
        self.receptive_frames = _receptive_frames(kind, net)

    @property
    def name(self) -> str:
        return NAMES[self.kind]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mels = features.transpose(1, 2)
        return self.net.decode(mels) if self.kind == "vocos" else self.net(mels)[:, 0]


def load_pretrained(source: str | Path, device: torch.device | str = "cpu") -> PretrainedVocoder:
    """A Vocos or BigVGAN model from a local folder or a Hub id, weights only."""
    folder = read_pretrained(source)
    frontend = mel_frontend(folder.kind, folder.config, folder.source)
    try:
        net = (_build_vocos if folder.kind == "vocos" else _build_bigvgan)(folder)
    except ImportError as exc:
        raise InputError(
            f"{folder.source}: a {NAMES[folder.kind]} model needs the {folder.kind} package "
            f"(pip install 'tokquant[{folder.kind}]'; {exc})"
        ) from None
    return PretrainedVocoder(folder.kind, folder.source, net.eval(), frontend).to(device)


def mel_frontend(kind: str, config: dict[str, Any], where: str = "config") -> FrontendConfig:
    """The front-end options that compute this vocoder's mel (its package's own function,
    to float rounding: ``tests/test_pretrained_vocoders.py``)."""
    front = FrontendConfig(**(_vocos_mel if kind == "vocos" else _bigvgan_mel)(config, where))
    try:
        front.validate()
    except ValueError as exc:
        raise FormatError(f"{where}: its mel is not one tokquant computes ({exc})") from None
    return front


def _vocos_mel(config: dict[str, Any], where: str) -> dict[str, Any]:
    """``vocos.feature_extractors.MelSpectrogramFeatures``: torchaudio's defaults, power 1."""
    fe = _section(config, "feature_extractor", where)
    n_fft, hop = _int(fe, "n_fft", 16, 1 << 14, where), _int(fe, "hop_length", 1, 1 << 14, where)
    padding = fe.get("padding", "center")
    if padding not in ("center", "same"):
        raise FormatError(f"{where}: feature_extractor padding must be center or same")
    return {
        "kind": "logmel",
        "sample_rate": _int(fe, "sample_rate", 1000, 384_000, where),
        "n_fft": n_fft,
        "win_length": n_fft,
        "hop_length": hop,
        "n_mels": _int(fe, "n_mels", 1, 1024, where),
        "log_floor": 1e-7,
        "power": 1.0,
        "reflect_pad": n_fft // 2 if padding == "center" else (n_fft - hop) // 2,
    }


def _bigvgan_mel(config: dict[str, Any], where: str) -> dict[str, Any]:
    """``bigvgan.meldataset.mel_spectrogram`` (``center=False``, as BigVGAN calls it)."""
    n_fft, win = (
        _int(config, "n_fft", 16, 1 << 14, where),
        _int(config, "win_size", 16, 1 << 14, where),
    )
    if win != n_fft:
        raise FormatError(f"{where}: win_size {win} is not n_fft {n_fft}; tokquant frames n_fft")
    hop, fmax = _int(config, "hop_size", 1, n_fft, where), config.get("fmax")
    return {
        "kind": "logmel",
        "sample_rate": _int(config, "sampling_rate", 1000, 384_000, where),
        "n_fft": n_fft,
        "win_length": win,
        "hop_length": hop,
        "n_mels": _int(config, "num_mels", 1, 1024, where),
        "f_min": float(_number(config, "fmin", where)),
        "f_max": None if fmax is None else float(_number(config, "fmax", where)),
        "log_floor": 1e-5,
        "power": 1.0,
        "power_eps": 1e-9,
        "mel_scale": "slaney",
        "mel_norm": "slaney",
        "reflect_pad": (n_fft - hop) // 2,
    }


def check_frontend(vocoder: PretrainedVocoder, front: FrontendConfig) -> None:
    """Refuse, in one line, a tokenizer whose features are not this vocoder's mel."""
    want = vocoder.frontend
    for name in MEL_FIELDS:
        ours, theirs = _normal(front, name), _normal(want, name)
        if ours != theirs:
            raise InputError(
                f"{vocoder.source}: {vocoder.name} decodes log-mels with frontend.{name} "
                f"{_shown(theirs)}, this tokenizer's is {_shown(ours)}; train the tokenizer on "
                f"configs/logmel-{vocoder.kind}-*.yaml (or train-vocoder one for it)"
            )


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _normal(front: FrontendConfig, name: str) -> Any:
    value = getattr(front, name)
    if name == "f_max" and value is None:
        return front.sample_rate / 2
    return float(value) if isinstance(value, (int, float)) and name != "kind" else value


# Building the models ------------------------------------------------------------------


def _build_vocos(folder: PretrainedFolder) -> nn.Module:
    # optional extra: vocos
    from vocos.feature_extractors import MelSpectrogramFeatures
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone
    from vocos.pretrained import Vocos

    where, sections = folder.source, {}
    for part, class_path in _VOCOS_CLASSES.items():
        section = _section(folder.config, part, where)
        if folder.config[part].get("class_path") != class_path:
            raise FormatError(
                f"{where}: {part} is {shown(folder.config[part].get('class_path'))}; tokquant "
                f"reads mel Vocos models ({class_path})"
            )
        sections[part] = section
    fe, bb, hd = sections["feature_extractor"], sections["backbone"], sections["head"]
    backbone = {
        "input_channels": _int(bb, "input_channels", 1, 1024, where),
        "dim": _int(bb, "dim", 1, 8192, where),
        "intermediate_dim": _int(bb, "intermediate_dim", 1, 32768, where),
        "num_layers": _int(bb, "num_layers", 1, 128, where),
    }
    if bb.get("layer_scale_init_value") is not None:
        backbone["layer_scale_init_value"] = float(_number(bb, "layer_scale_init_value", where))
    head = {
        "dim": _int(hd, "dim", 1, 8192, where),
        "n_fft": _int(hd, "n_fft", 16, 1 << 14, where),
        "hop_length": _int(hd, "hop_length", 1, 1 << 14, where),
        "padding": str(hd.get("padding", "same")),
    }
    mel = {k: fe[k] for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "padding") if k in fe}
    if (backbone["input_channels"], head["hop_length"]) != (fe["n_mels"], fe["hop_length"]):
        raise FormatError(f"{where}: backbone input_channels and head hop_length must be the mel's")

    def build() -> nn.Module:
        with torch.device("cpu"):  # small, and torchaudio's filterbank cannot be on meta
            features = MelSpectrogramFeatures(**mel)
        return Vocos(features, VocosBackbone(**backbone), ISTFTHead(**head))

    return _loaded(build, folder, weight_norm=False)


#: The widest BigVGAN this loader builds (the published ones start at 1,536 channels).
_MAX_CHANNELS = 8192


def _build_bigvgan(folder: PretrainedFolder) -> nn.Module:
    # optional extra: bigvgan
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    c, where = folder.config, folder.source
    rates = _ints(c, "upsample_rates", 1, 16, where)
    if 2 ** len(rates) > _MAX_CHANNELS:  # each stage halves the channels
        raise FormatError(f"{where}: config upsample_rates has {len(rates)} stages, at most 13")
    kernels = _ints(c, "upsample_kernel_sizes", 1, 64, where)
    dilations = c.get("resblock_dilation_sizes")
    if len(rates) != len(kernels) or not isinstance(dilations, list):
        raise FormatError(f"{where}: upsample_rates and upsample_kernel_sizes differ in length")
    h = AttrDict(
        num_mels=_int(c, "num_mels", 1, 1024, where),
        upsample_rates=rates,
        upsample_kernel_sizes=kernels,
        upsample_initial_channel=_int(
            c, "upsample_initial_channel", 2 ** len(rates), _MAX_CHANNELS, where
        ),
        resblock=str(c.get("resblock", "1")),
        resblock_kernel_sizes=_ints(c, "resblock_kernel_sizes", 1, 64, where),
        resblock_dilation_sizes=[_ints({"d": d}, "d", 1, 64, where) for d in dilations],
        activation=str(c.get("activation", "snakebeta")),
        snake_logscale=bool(c.get("snake_logscale", True)),
        use_tanh_at_final=bool(c.get("use_tanh_at_final", True)),
        use_bias_at_final=bool(c.get("use_bias_at_final", True)),
    )
    if len(h.resblock_kernel_sizes) != len(h.resblock_dilation_sizes):
        raise FormatError(
            f"{where}: resblock_kernel_sizes and resblock_dilation_sizes differ in length"
        )
    if math.prod(rates) != c.get("hop_size"):
        raise FormatError(f"{where}: upsample_rates multiply to {math.prod(rates)}, not hop_size")

    def build() -> nn.Module:
        return BigVGAN(h, use_cuda_kernel=False)  # a config never compiles a kernel

    return _loaded(build, folder, weight_norm=True)


def _loaded(build: Any, folder: PretrainedFolder, *, weight_norm: bool) -> nn.Module:
    """``build()`` with the folder's weights, shapes checked on the meta device first so
    a hostile config allocates nothing. BigVGAN's published weights keep weight norm;
    it is folded in for inference (or before loading, for weights saved folded)."""
    where = f"{folder.source}: {NAMES[folder.kind]}"
    fold_first = weight_norm and not any(k.endswith("weight_v") for k in folder.state)

    def make() -> nn.Module:
        net = build()
        if fold_first:
            _fold(net)
        return net

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # BigVGAN's torch weight_norm
            expected = make().state_dict()
    except (TypeError, ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        raise FormatError(f"{where} config is invalid: {exc}") from None
    _check_state(where, expected, folder.state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        net = make()
    net.load_state_dict(folder.state)
    if weight_norm and not fold_first:
        _fold(net)
    return net


def _fold(net: nn.Module) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # BigVGAN prints as it folds
        net.remove_weight_norm()


def _check_state(where: str, expected: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        names = ", ".join((missing or extra)[:3])
        raise FormatError(
            f"{where} weights do not fit its config ({'missing' if missing else 'unexpected'} "
            f"tensors: {names})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise FormatError(
                f"{where} weights: {name} has shape {list(tensor.shape)}, its config "
                f"makes {list(expected[name].shape)}"
            )
        check_weight(tensor, f"{where} weights: {name}")


def _receptive_frames(kind: str, net: nn.Module) -> int:
    """Frames on each side that reach a frame's samples: chunks overlap by this much."""
    if kind == "vocos":
        istft = net.head.istft  # kernel-7 embedding and blocks, then the inverse STFT
        return 3 * (len(net.backbone.convnext) + 1) + istft.n_fft // istft.hop_length // 2 + 1
    h = net.h  # BigVGAN: the reach of each stage, in output samples, over the hop
    hop, rate, reach = math.prod(h.upsample_rates), 1, 3 * math.prod(h.upsample_rates) + 9
    for u, k in zip(h.upsample_rates, h.upsample_kernel_sizes, strict=True):
        rate *= u
        blocks = max(
            (kk - 1) // 2 * (sum(d) + len(d)) + 6 * 2 * len(d)
            for kk, d in zip(h.resblock_kernel_sizes, h.resblock_dilation_sizes, strict=True)
        )
        reach += hop // rate * (k + blocks)
    return -(-reach // hop) + 1


# Config values ------------------------------------------------------------------------


def _section(config: dict[str, Any], part: str, where: str) -> dict[str, Any]:
    section = config.get(part)
    args = section.get("init_args", {}) if isinstance(section, dict) else None
    if not isinstance(args, dict):
        raise FormatError(f"{where}: config has no {part} section")
    return args


def _number(section: dict[str, Any], key: str, where: str) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(f"{where}: config {key} must be a number, found {shown(value)}")
    return value


def _int(section: dict[str, Any], key: str, lo: int, hi: int, where: str) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FormatError(
            f"{where}: config {key} must be an integer in [{lo}, {hi}], found {shown(value)}"
        )
    return value


def _ints(section: dict[str, Any], key: str, lo: int, hi: int, where: str) -> list[int]:
    values = section.get(key)
    if not isinstance(values, list) or not 1 <= len(values) <= 16:
        raise FormatError(f"{where}: config {key} must be a list of 1 to 16 integers")
    return [_int({key: v}, key, lo, hi, where) for v in values]
