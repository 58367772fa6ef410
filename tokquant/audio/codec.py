"""A neural codec's encoder as a front end (EnCodec, DAC, Mimi through ``transformers``).

A codec folder is what ``save_pretrained`` writes and what the Hub's cache holds:
``config.json`` and ``model.safetensors``. Only that is read: a folder that holds its
weights as a pickle (``pytorch_model.bin``) is refused, never unpickled, and the config
is checked, every size bounded, before anything is built. The network is then built on
the meta device, its tensors' names and shapes compared with the file's, and only then
allocated and loaded. The sha256 of its config and tensors (:func:`codec_digest`) is
recorded in a tokenizer and checked on every load: codes are only the codec's codes with
its exact weights.

Features are the encoder's continuous latents ``[T, D]``, before its quantizer: a codec
tokenizer quantizes them with the codec's own RVQ (imported with the same codes, see
:mod:`tokquant.tokenizer.importers`), and any tokquant quantizer can be trained on them.
Frames follow the codec's own framing: ``ceil(L / hop)`` frames for ``L`` samples
(EnCodec pads inside its convolutions; DAC's input is zero-padded to whole hops, as its
feature extractor does).

Windows, as for SSL models: a file up to ``window_seconds`` is encoded whole, in one
call, alone and unpadded, so its codes are the ones ``model.encode`` gives the file; a
longer file is encoded in windows of that length with ``context_seconds`` of audio each
side (cropped afterwards), which bounds memory; near window edges its latents can differ
from the whole file's (``tokquant audit`` reports by how much).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load as load_safetensors

from tokquant.audio.codec_models import (
    codec_folder,
    codec_hop,
    mimi_context_seconds,
    read_codec_config,
)
from tokquant.audio.windows import fixed_windows
from tokquant.errors import FormatError, InputError
from tokquant.storage.regular import read_regular

if TYPE_CHECKING:
    from tokquant.tokenizer.config import FrontendConfig


@dataclass
class CodecFolder:
    """What a codec folder holds, read and checked, nothing built."""

    path: Path
    kind: str
    config: dict[str, Any]
    weights: dict[str, torch.Tensor]
    sha256: str

    @property
    def hop(self) -> int:
        return codec_hop(self.kind, self.config)

    @property
    def sample_rate(self) -> int:
        return int(self.config["sampling_rate"])

    @property
    def latent_dim(self) -> int:
        return int(self.config["hidden_size"])


#: Config keys that say who saved the folder, not what the codec computes.
_UNSAID = ("transformers_version", "architectures", "dtype", "torch_dtype", "_name_or_path")


def codec_digest(config: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    """sha256 of what makes the codec's codes: its config (less who saved it) and its
    tensors (names, dtypes, shapes, values in name order)."""
    digest = hashlib.sha256(b"tokquant-codec\0")
    said = {k: v for k, v in config.items() if k not in _UNSAID}
    digest.update(json.dumps(said, sort_keys=True).encode() + b"\0")
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def read_codec(folder: str | Path) -> CodecFolder:
    """``config.json`` and ``model.safetensors`` of a codec folder, checked; one
    :class:`InputError` or :class:`FormatError` line otherwise."""
    path = codec_folder(folder)
    kind, config = read_codec_config(path)
    weights_file = path / "model.safetensors"
    if not weights_file.is_file():
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        why = f" (it holds {pickled[0]}, a pickle, which is never loaded)" if pickled else ""
        raise FormatError(f"{path}: no model.safetensors{why}; save it with save_pretrained")
    try:
        weights = load_safetensors(read_regular(weights_file))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a format error
        raise FormatError(f"{weights_file}: not a safetensors file ({exc})") from None
    return CodecFolder(path, kind, config, weights, codec_digest(config, weights))


#: Mimi files keep the original flat layout (``encoder.layers``, ``encoder_transformer``,
#: ``downsample``); ``MimiModel`` nests them in its two halves (``transformers`` renames
#: them the same way when it loads the file).
_MIMI_RENAMES = [
    (r"^encoder\.layers\.", "encoder.encoder_seanet.layers."),
    (r"^encoder_transformer\.", "encoder.encoder_transformer."),
    (r"^downsample\.", "encoder.downsample."),
    (r"^decoder\.layers\.", "decoder.decoder_seanet.layers."),
    (r"^decoder_transformer\.", "decoder.decoder_transformer."),
    (r"^upsample\.", "decoder.upsample."),
]


def _model_names(kind: str, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The file's tensors under the names the ``transformers`` model gives them."""
    if kind != "mimi":
        return weights
    renamed = {}
    for name, tensor in weights.items():
        for pattern, target in _MIMI_RENAMES:
            name = re.sub(pattern, target, name)
        renamed[name] = tensor
    return renamed


def build_codec(folder: CodecFolder) -> torch.nn.Module:
    """The ``transformers`` model of a checked folder, its weights loaded, in eval mode."""
    try:
        # optional extra: transformers
        import transformers
    except ImportError:
        raise InputError(
            "codec tokenizers need transformers: pip install 'tokquant[codecs]'"
        ) from None
    classes = {
        "encodec": ("EncodecConfig", "EncodecModel"),
        "dac": ("DacConfig", "DacModel"),
        "mimi": ("MimiConfig", "MimiModel"),
    }
    config_class, model_class = (getattr(transformers, n) for n in classes[folder.kind])
    known = {k: v for k, v in folder.config.items() if not k.startswith("_")}
    try:
        config = config_class(**known)
        with torch.device("meta"):  # shapes first: a hostile config allocates nothing
            expected = model_class(config).state_dict()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise FormatError(f"{folder.path}/config.json: unusable ({exc})") from None
    weights = _model_names(folder.kind, folder.weights)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [n for n in sorted(set(expected) & set(weights))
              if tuple(expected[n].shape) != tuple(weights[n].shape)]  # fmt: skip
    if missing or unexpected or shapes:
        first = (missing or unexpected or shapes)[0]
        raise FormatError(
            f"{folder.path}: model.safetensors is not this config's model ({len(missing)} "
            f"missing, {len(unexpected)} unexpected, {len(shapes)} of another shape; "
            f"first {first})"
        )
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise FormatError(f"{folder.path}: tensor {name} holds NaN or Inf")
    with _no_init():  # every persistent tensor is loaded next (strict)
        model = model_class(config)
    model.load_state_dict(weights)
    return model.eval()


def _no_init() -> Any:
    """``transformers``' own switch that skips drawing random weights about to be
    overwritten, as its ``from_pretrained`` does (a second of Mimi's start-up)."""
    try:
        skip = importlib.import_module("transformers.initialization").no_init_weights
    except (ImportError, AttributeError):  # another transformers: draw them, slower
        return contextlib.nullcontext()
    return skip()


def quantizer_state(folder: CodecFolder) -> dict[str, torch.Tensor]:
    """The codec's quantizer tensors, named as :func:`tokquant.tokenizer.importers.
    import_rvq` reads them (``encodec``: ``layers.{l}._codebook.embed``; ``dac``:
    ``quantizers.{l}.*``; ``mimi``: its two quantizers' tensors as saved)."""
    prefix = "quantizer."
    state = {k[len(prefix) :]: v for k, v in folder.weights.items() if k.startswith(prefix)}
    if folder.kind == "encodec":
        return {k.replace(".codebook.", "._codebook."): v for k, v in state.items()}
    return state


def frontend_section(folder: CodecFolder) -> dict[str, Any]:
    """The ``frontend:`` section of a tokenizer on this codec's latents."""
    context = (
        {"context_seconds": mimi_context_seconds(folder.config)} if folder.kind == "mimi" else {}
    )
    return {
        **context,
        "kind": "codec",
        "model": folder.kind,
        "weights": str(folder.path),
        "weights_sha256": folder.sha256,
        "sample_rate": folder.sample_rate,
        "hop_length": folder.hop,
        "win_length": folder.hop,
        "n_fft": max(16, folder.hop),
        "n_mels": 1,
        "n_mfcc": 1,
        "latent_dim": folder.latent_dim,
    }


def _tensor(output: Any) -> torch.Tensor:
    """A network half's result: EnCodec's and DAC's return a tensor, Mimi's an output
    object whose first field is it."""
    return output if isinstance(output, torch.Tensor) else output[0]


class CodecFrontEnd:
    """A codec encoder's latents on fixed windows (see the module docstring)."""

    #: the last window reads the file's true end, not samples mirrored past it
    clip_end = True

    def __init__(self, config: FrontendConfig, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.folder = read_codec(config.weights or "")
        if self.folder.kind != config.model:
            raise InputError(
                f"{self.folder.path}: a {self.folder.kind} codec, this tokenizer's is {config.model}"
            )
        self.device = torch.device(device)
        self.model = build_codec(self.folder).to(self.device)
        self.hop = config.hop_length
        rate = config.sample_rate / self.hop
        self.window = max(1, round(config.window_seconds * rate))
        self.context = round(config.context_seconds * rate)

    @property
    def weights_sha256(self) -> str:
        return self.folder.sha256

    def check_weights(self, expected: str | None) -> None:
        """Refuse weights other than those this tokenizer was made with (None: any)."""
        if expected and expected != self.folder.sha256:
            raise InputError(
                f"{self.folder.path}: codec weights or config (sha256 {self.folder.sha256[:12]}) "
                f"are not the ones this tokenizer was made with ({expected[:12]}); its codes "
                f"are only the codec's with its exact weights"
            )

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def num_frames(self, num_samples: int) -> int:
        return self.config.num_frames(num_samples)

    def sample_range(self, f0: int, f1: int) -> tuple[int, int]:
        return f0 * self.hop, f1 * self.hop

    def windows(self, total: int) -> list[tuple[int, int, int, int]]:
        """One window for a file up to ``window_seconds``, else windows with context."""
        return fixed_windows(total, self.window, self.context)

    @torch.no_grad()
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """``[n]`` samples -> ``[ceil(n / hop), latent_dim]`` float32 latents."""
        x = wave.to(self.device, torch.float32)[None, None]
        if self.folder.kind == "dac":  # whole hops, zero-padded, as DAC's extractor does
            x = torch.nn.functional.pad(x, (0, -x.shape[-1] % self.hop))
        return _tensor(self.model.encoder(x))[0].T.float().cpu()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Quantized latents ``[T, D]`` -> ``T x hop`` samples through the codec's decoder
        (cut or zero-filled at the end to exactly that length)."""
        z = latents.to(self.device, torch.float32).transpose(0, 1)[None]
        wave = _tensor(self.model.decoder(z)).reshape(-1).float().cpu()
        want = latents.shape[0] * self.hop
        return torch.nn.functional.pad(wave, (0, max(0, want - wave.numel())))[:want]
