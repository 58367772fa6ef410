"""What tokquant reads of a codec folder's ``config.json``, as plain data: the checks
that bound every size before a network is built, and the rate, hop and latent width a
``kind: codec`` front end takes from it. Torch-free, so a config validates without it
(the network is :mod:`tokquant.audio.codec`'s)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.choices import CODECS
from tokquant.errors import FormatError, InputError
from tokquant.storage.hub import hub_snapshot, is_hub_id
from tokquant.storage.regular import read_regular
from tokquant.storage.safe_json import loads as json_loads

if TYPE_CHECKING:
    from tokquant.tokenizer.config import FrontendConfig

#: Bounds on a codec config's sizes, checked before anything is allocated (the published
#: models are well inside them: EnCodec 24 kHz has hidden 128, 32 filters; DAC 44 kHz has
#: hidden 1024, encoder 64, decoder 1536).
_LIMITS = {
    "hidden_size": 4096,
    "num_filters": 1024,
    "encoder_hidden_size": 1024,
    "decoder_hidden_size": 4096,
    "codebook_size": 1 << 16,
    "codebook_dim": 4096,
    "n_codebooks": 64,
    "num_lstm_layers": 8,
    "num_residual_layers": 8,
    "kernel_size": 63,
    "last_kernel_size": 63,
    "residual_kernel_size": 63,
    "sampling_rate": 384_000,
    "audio_channels": 2,
    # Mimi (published: hidden 512, 8 layers of 8 heads, MLP 2048, 32 codebooks of 2048)
    "num_hidden_layers": 64,
    "num_attention_heads": 64,
    "num_key_value_heads": 64,
    "head_dim": 1024,
    "intermediate_size": 16384,
    "num_quantizers": 64,
    "num_semantic_quantizers": 64,
    "vector_quantization_hidden_dimension": 4096,
    "sliding_window": 100_000,
    "max_position_embeddings": 1_000_000,
    "upsample_groups": 4096,
}
_MAX_HOP = 8192
_MAX_STAGES = 8


def _ratios_key(kind: str) -> str:
    return "downsampling_ratios" if kind == "dac" else "upsampling_ratios"


def codec_hop(kind: str, config: dict[str, Any]) -> int:
    """Samples per frame: the product of the encoder's stride ratios (Mimi's then
    downsamples its 25 Hz latents by its latent stride, 2 for the published 12.5 Hz)."""
    hop = math.prod(int(r) for r in config[_ratios_key(kind)])
    return hop * mimi_latent_stride(config) if kind == "mimi" else hop


def mimi_latent_stride(config: dict[str, Any]) -> int:
    """Mimi's downsampling from its SEANet rate to its frame rate, as ``MimiConfig``
    derives it: a saved ``frame_rate`` (older configs), else a stride of 2."""
    frame_rate = _mimi_frame_rate(config)
    if frame_rate is None:
        return 2
    seanet_rate = math.ceil(config["sampling_rate"] / math.prod(config["upsampling_ratios"]))
    return int(seanet_rate / frame_rate)


def _mimi_frame_rate(config: dict[str, Any]) -> Any:
    """The frame rate a Mimi config saved, if any (``MimiConfig`` keeps it as
    ``_frame_rate``; older files say ``frame_rate``)."""
    return config.get("_frame_rate", config.get("frame_rate"))


def codec_folder(source: str | Path) -> Path:
    """The folder ``source`` names, or a Hub id's folder in the Hub's cache (downloaded
    unless ``HF_HUB_OFFLINE``): ``config.json`` and ``model.safetensors`` only."""
    if is_hub_id(source):
        return hub_snapshot(str(source), ["config.json", "model.safetensors"], "'tokquant[codecs]'")
    return Path(source)


def read_codec_config(folder: str | Path) -> tuple[str, dict[str, Any]]:
    """A codec folder's kind and checked ``config.json``, no weights read."""
    path = codec_folder(folder)
    if not path.is_dir():
        raise InputError(
            f"{path}: no such codec folder (config.json and model.safetensors), nor a Hub id "
            f"such as descript/dac_16khz"
        )
    config = json_loads(read_regular(path / "config.json").decode("utf-8", "replace"),
                        f"{path}/config.json")  # fmt: skip
    if not isinstance(config, dict):
        raise FormatError(f"{path}/config.json: not a JSON object")
    kind = config.get("model_type")
    if kind not in CODECS:
        raise FormatError(
            f"{path}/config.json: model_type {kind!r} is not a codec tokquant reads "
            f"({', '.join(CODECS)})"
        )
    _check_config(kind, config, f"{path}/config.json")
    return kind, config


def _check_config(kind: str, config: dict[str, Any], where: str) -> None:
    for key in ("sampling_rate", "hidden_size"):
        if key not in config:
            raise FormatError(f"{where}: lacks {key}")
    for key, hi in _LIMITS.items():
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise FormatError(f"{where}: {key} must be an integer in [1, {hi:,}], found {value!r}")
    ratios_key = _ratios_key(kind)
    ratios = config.get(ratios_key)
    if (
        not isinstance(ratios, list)
        or not 1 <= len(ratios) <= _MAX_STAGES
        or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in ratios)
        or math.prod(ratios) > _MAX_HOP
    ):
        raise FormatError(
            f"{where}: {ratios_key} must be 1 to {_MAX_STAGES} positive integers whose "
            f"product (the hop) is at most {_MAX_HOP}, found {ratios!r}"
        )
    if kind == "encodec" and (config.get("audio_channels", 1) != 1 or config.get("normalize")):
        raise FormatError(
            f"{where}: a stereo or normalising EnCodec (the 48 kHz model) is not supported; "
            f"tokquant reads the mono 24 kHz kind"
        )
    if kind == "encodec" and config.get("chunk_length_s") is not None:
        raise FormatError(f"{where}: chunked EnCodec (chunk_length_s) is not supported")
    if kind == "mimi":
        _check_mimi(config, where)


def _check_mimi(config: dict[str, Any], where: str) -> None:
    """What a Mimi must be for tokquant's reading of it: mono, its codebooks as wide as
    the space its quantizers project into, a whole latent stride, and the semantic split
    inside the codebooks."""
    if config.get("audio_channels", 1) != 1:
        raise FormatError(f"{where}: a stereo Mimi is not supported; tokquant reads mono")
    vq_dim = config.get("vector_quantization_hidden_dimension", 256)
    if config.get("codebook_dim", config.get("hidden_size", 512)) != vq_dim:
        raise FormatError(
            f"{where}: codebook_dim must equal vector_quantization_hidden_dimension "
            f"({vq_dim}), as Mimi's quantizers search in that space"
        )
    semantic = config.get("num_semantic_quantizers", 1)
    if not semantic < config.get("num_quantizers", 32):
        raise FormatError(f"{where}: num_semantic_quantizers must be below num_quantizers")
    frame_rate = _mimi_frame_rate(config)
    if frame_rate is not None and (
        isinstance(frame_rate, bool)
        or not isinstance(frame_rate, (int, float))
        or not frame_rate > 0
        or mimi_latent_stride(config) not in (1, 2, 3, 4)
    ):
        raise FormatError(f"{where}: frame_rate {frame_rate!r} is not a whole latent stride")


def mimi_context_seconds(config: dict[str, Any]) -> float:
    """Context a Mimi window needs for its codes to be the whole file's: its encoder's
    transformer attends ``sliding_window`` SEANet frames back (10 s published), plus a
    second for its convolutions."""
    seanet_rate = config["sampling_rate"] / math.prod(config["upsampling_ratios"])
    return config.get("sliding_window", 250) / seanet_rate + 1.0


def complete_section(front: FrontendConfig) -> None:
    """Fill a ``kind: codec`` section written by hand (``weights: FOLDER``, the rest
    left out) from the folder's config: the codec, its rate, hop and latent width."""
    kind, config = read_codec_config(front.weights or "")
    if front.model and front.model != kind:
        raise InputError(f"{front.weights}: a {kind} codec, the config says {front.model}")
    hop = codec_hop(kind, config)
    if kind == "mimi":
        front.context_seconds = max(front.context_seconds, mimi_context_seconds(config))
    front.model, front.sample_rate = kind, int(config["sampling_rate"])
    front.latent_dim = int(config["hidden_size"])
    front.hop_length = front.win_length = hop
    front.n_fft = max(16, hop)
