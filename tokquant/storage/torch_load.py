"""``torch.load`` for files from users: weights only, and quiet.

Refusing a pickle is the expected outcome for a hostile file, and torch warns about the
pickle protocol on its way to refusing it; that warning would add lines to tokquant's
one-line error, so it is silenced here. :func:`load_state_dict` is the one reader of state
dicts from users (RVQ imports, SSL weights).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.errors import FormatError

if TYPE_CHECKING:
    import torch


def quiet_torch_load(path: Path) -> Any:
    # start-up time: torch
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


def load_state_dict(
    path: Path, *, suffix: str | None = None, inner: str | None = None
) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a weights-only ``.pt``/``.pth`` (no pickle
    code); ``suffix`` names the format of a file whose own name does not (a download).
    A ``.pt`` may nest it under ``"state_dict"``, or ``inner`` (BigVGAN's ``"generator"``)."""
    # start-up time: torch
    import torch

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: file not found")
    try:
        if (suffix or path.suffix) == ".safetensors":
            # start-up time: safetensors
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = quiet_torch_load(path)
    except Exception:  # noqa: BLE001 - any refusal is the file's problem
        raise FormatError(
            f"{path}: not a state dict file (expected a weights-only .pt/.pth or a "
            f".safetensors file of tensors)"
        ) from None
    for key in ("state_dict", inner):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(f"{path}: not a state dict of tensors")
    for name, tensor in state.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not torch.isfinite(tensor).all():
            raise FormatError(f"{path}: tensor {name} holds NaN or Inf")
    return state
