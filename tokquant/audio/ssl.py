"""Self-supervised speech models (HuBERT, WavLM, wav2vec 2.0) as a front end.

The architectures and weights are torchaudio's pipeline bundles (``HUBERT_BASE``,
``WAVLM_BASE_PLUS``, ...): the model is built from the bundle's own parameters and its
weights are read from ``frontend.weights`` (a safetensors or weights-only ``.pt`` state
dict) or from torch.hub's cache, where the bundle downloads them on first use.

Why windows, and why one window at a time. These models look at the whole input: the
first conv of HuBERT/wav2vec 2.0 base normalises over time, attention spans every frame,
and the large models normalise the waveform. Measured on torchaudio's HuBERT base, padding
a file into a batch moves its layer-6 features by up to 0.54, and cutting a file moves
features near the cut by up to 0.8. So features are computed on fixed windows that depend
only on the file: window ``k`` owns frames ``[k W, (k+1) W)`` and is computed from the
samples of frames ``[k W - C, (k+1) W + C)`` (``C`` frames of context each side, cropped
afterwards). A window is always run alone, unpadded: a file gives the same features
encoded alone, among others, or read in chunks, and memory is bounded by the window, not
the file. The price is the context (``2 C / W`` extra compute on long files, none on
files shorter than a window) and a boundary effect at window edges, which
``scripts/bench_ssl.py`` reports as windowed vs whole-file code agreement.

Frames follow the conv stack exactly: 400-sample receptive field, 320-sample hop, so ``L``
samples at 16 kHz give ``1 + (L - 400) // 320`` frames (0 when ``L < 400``), 50 per second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.request import Request, urlopen

import torch

from tokquant.audio._torchaudio import torchaudio_ssl
from tokquant.audio.ssl_models import FRAME_RATE, HOP, RECEPTIVE_FIELD, ssl_model
from tokquant.audio.windows import fixed_windows
from tokquant.errors import FormatError, InputError
from tokquant.storage.torch_load import load_state_dict

if TYPE_CHECKING:
    from tokquant.tokenizer.config import FrontendConfig

#: Where torchaudio's bundles download their weights from.
WEIGHTS_BASE_URL = "https://download.pytorch.org/torchaudio/models/"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Architecture:
    """What tokquant needs of a torchaudio SSL bundle."""

    name: str
    model_type: str  # "Wav2Vec2" (wav2vec 2.0, HuBERT) or "WavLM"
    params: dict[str, Any]
    file_name: str  # the weights' name in torch.hub's cache
    normalize_waveform: bool

    @property
    def embed_dim(self) -> int:
        return int(self.params["encoder_embed_dim"])

    @property
    def num_layers(self) -> int:
        return int(self.params["encoder_num_layers"])

    @property
    def url(self) -> str:
        return WEIGHTS_BASE_URL + self.file_name

    def build(self) -> torch.nn.Module:
        models = torchaudio_ssl()[0]
        factory = models.wavlm_model if self.model_type == "WavLM" else models.wav2vec2_model
        return factory(**self.params)


@functools.cache
def architecture(name: str) -> Architecture:
    """The model ``name`` as torchaudio's bundle builds it (ConfigError for a name that is
    none of :data:`tokquant.audio.ssl_models.MODELS`)."""
    known = ssl_model(name)
    bundle = getattr(torchaudio_ssl()[1], known.name)
    # torchaudio keeps these as bundle attributes; they are what its get_model() uses.
    return Architecture(
        name=name,
        model_type=bundle._model_type,
        params=dict(bundle._params),
        file_name=Path(bundle._path).name,
        normalize_waveform=bool(bundle._normalize_waveform),
    )


def num_frames(num_samples: int) -> int:
    return 0 if num_samples < RECEPTIVE_FIELD else 1 + (num_samples - RECEPTIVE_FIELD) // HOP


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of the tensors themselves (names, dtypes, shapes, values in name order), so
    the same weights in a .pt or a safetensors file have the same digest."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _weights_path(config: FrontendConfig, arch: Architecture) -> Path:
    """The weights file: ``frontend.weights``, else torch.hub's cache, downloaded into it
    on first use."""
    if config.weights:
        return Path(config.weights).expanduser()
    cached = Path(torch.hub.get_dir()) / "checkpoints" / arch.file_name
    if not cached.is_file():
        try:
            download(arch.url, cached)
        except (OSError, ValueError, FormatError) as exc:  # offline is the common case
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"{arch.name}: weights are not in torch.hub's cache ({cached}) and could not "
                f"be downloaded ({reason}); download {arch.url} there, or set "
                f"frontend.weights: FILE (or `ssl_weights`)"
            ) from None
    return cached


def download(url: str, dest: Path) -> None:
    """Fetch ``url`` into ``dest`` whole or not at all.

    The cache folder is made first (on a fresh machine ``$TORCH_HOME/hub/checkpoints``
    does not exist, and torch's own download opens its ``.partial`` file there before
    fetching anything). The bytes go to a temp file beside ``dest``; a response shorter
    than its Content-Length (a dropped connection, which urllib does not report) or a
    file that is no state dict is refused, and only a checked file is renamed into place,
    so an interrupted download never leaves a cache entry that fails every later run."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.download")
    try:
        request = Request(url, headers={"User-Agent": "tokquant"})
        with urlopen(request, timeout=60) as response, open(tmp, "wb") as fh:  # noqa: S310
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(1 << 20):
                fh.write(chunk)
                received += len(chunk)
        if expected is not None and received != int(expected):
            raise OSError(f"the download ended after {received} of {expected} bytes")
        load_state_dict(tmp, suffix=dest.suffix)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _mismatch(
    path: Path, arch: Architecture, model: torch.nn.Module, state: dict[str, torch.Tensor]
) -> str:
    """Why ``state`` is not ``model``'s weights, in one short line (torch's own message
    lists every missing key: 12 KB for weights of another architecture)."""
    want = model.state_dict()
    parts = []
    for label, names in (
        ("missing", sorted(set(want) - set(state))),
        ("unexpected", sorted(set(state) - set(want))),
    ):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{len(names)} tensor(s) {label}: {', '.join(names[:3])}{more}")
    shapes = [n for n in sorted(set(want) & set(state)) if want[n].shape != state[n].shape]
    if shapes:
        n = shapes[0]
        parts.append(
            f"{len(shapes)} of another shape, first {n} {list(state[n].shape)} "
            f"(expected {list(want[n].shape)})"
        )
    return f"{path}: not {arch.name} weights ({'; '.join(parts) or 'they do not load'})"


class SSLFrontEnd:
    """Layer features of an SSL model on fixed windows (see the module docstring)."""

    def __init__(self, config: FrontendConfig, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.arch = architecture(config.model)
        self.device = torch.device(device)
        self.dtype = _DTYPES[config.precision] if self.device.type == "cuda" else torch.float32
        path = _weights_path(config, self.arch)
        state = load_state_dict(path)
        self.weights_path = path
        self.weights_sha256 = weights_digest(state)
        model = self.arch.build()
        try:
            model.load_state_dict(state)
        except RuntimeError:
            raise InputError(_mismatch(path, self.arch, model, state)) from None
        self.model = model.eval().to(self.device, self.dtype)
        self.depth = max(config.layers)
        self.window = max(1, round(config.window_seconds * FRAME_RATE))
        self.context = round(config.context_seconds * FRAME_RATE)

    def check_weights(self, expected: str | None) -> None:
        """Refuse weights other than those a tokenizer was trained on (None: any)."""
        if expected and expected != self.weights_sha256:
            raise InputError(
                f"{self.weights_path}: SSL weights (sha256 {self.weights_sha256[:12]}) are not "
                f"the ones this tokenizer was trained on ({expected[:12]}); tokens are only "
                f"meaningful with their exact encoder"
            )

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def num_frames(self, num_samples: int) -> int:
        return num_frames(num_samples)

    def sample_range(self, f0: int, f1: int) -> tuple[int, int]:
        """Samples covered by frames ``[f0, f1)``."""
        return f0 * HOP, (f1 - 1) * HOP + RECEPTIVE_FIELD

    def windows(self, total: int) -> list[tuple[int, int, int, int]]:
        """``(own_start, own_stop, input_start, input_stop)`` frames of each window."""
        return fixed_windows(total, self.window, self.context)

    @torch.no_grad()
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """``[n]`` samples of one window -> ``[num_frames(n), feature_dim]`` float32."""
        x = wave.to(self.device, self.dtype).unsqueeze(0)
        if self.arch.normalize_waveform:  # as torchaudio's bundle wrapper does
            x = torch.nn.functional.layer_norm(x, x.shape)
        outputs, _ = self.model.extract_features(x, num_layers=self.depth)
        picked = [outputs[layer - 1][0] for layer in self.config.layers]
        if len(picked) == 1:
            merged = picked[0]
        elif self.config.layer_merge == "mean":
            merged = torch.stack(picked).float().mean(0)
        else:
            merged = torch.cat(picked, dim=-1)
        return merged.float().cpu()
