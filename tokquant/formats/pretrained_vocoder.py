"""A pretrained vocoder's folder, as Vocos and BigVGAN publish them on the Hugging Face
Hub, read as data.

===========  ===============  ==============================================
package      config           weights
===========  ===============  ==============================================
``vocos``    ``config.yaml``  ``pytorch_model.bin`` (a state dict)
``bigvgan``  ``config.json``  ``bigvgan_generator.pt`` (``{"generator": ...}``)
===========  ===============  ==============================================

A ``model.safetensors`` beside the config is read in place of the ``.bin``/``.pt``.

Nothing in the folder runs. Both packages' own loaders ``torch.load`` the weights with
pickle, and Vocos builds whatever classes its config's ``class_path`` names; here the
config is parsed as data (safe YAML, strict JSON), the weights are read weights-only
(safetensors, or ``torch.load(weights_only=True)``, which refuses pickled code), and the
model is built from the known classes by :mod:`tokquant.decoders.pretrained.networks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokquant.errors import ConfigError, FormatError, InputError
from tokquant.storage.hub import hub_snapshot, is_hub_id
from tokquant.storage.regular import read_regular
from tokquant.storage.safe_json import loads as json_loads
from tokquant.storage.safe_yaml import load_yaml
from tokquant.storage.torch_load import load_state_dict

#: Per package: its config file, its weights files (first found is read), and the key
#: its weights file nests the state dict under.
LAYOUTS = {
    "vocos": ("config.yaml", ("model.safetensors", "pytorch_model.bin"), None),
    "bigvgan": ("config.json", ("model.safetensors", "bigvgan_generator.pt"), "generator"),
}


@dataclass
class PretrainedFolder:
    """What a folder holds: which package's model, its config and its weights."""

    kind: str  # vocos | bigvgan
    source: str  # the folder or Hub id the user named
    config: dict[str, Any]
    state: dict[str, torch.Tensor]


def read_pretrained(source: str | Path) -> PretrainedFolder:
    """The folder ``source`` names, or the Hub repository (downloaded, or from the Hub
    cache when offline); any problem is one :class:`~tokquant.errors.InputError` or
    :class:`~tokquant.errors.FormatError` line."""
    folder = _download(str(source)) if is_hub_id(source) else Path(source)
    if not folder.exists():
        raise InputError(
            f"{source}: no such file or folder (a vocoder is a file from train-vocoder, a "
            f"Vocos or BigVGAN folder, or a Hub id such as charactr/vocos-mel-24khz)"
        )
    if not folder.is_dir():
        raise InputError(
            f"{source}: vocoder not found (a file from train-vocoder, a Vocos or BigVGAN "
            f"folder, or a Hub id such as charactr/vocos-mel-24khz)"
        )
    for kind, (config_name, weight_names, inner) in LAYOUTS.items():
        if (folder / config_name).is_file():
            config = _read_config(folder / config_name)
            weights = next((folder / w for w in weight_names if (folder / w).is_file()), None)
            if weights is None:
                raise InputError(f"{source}: has {config_name} but no {' or '.join(weight_names)}")
            state = load_state_dict(weights, inner=inner)
            return PretrainedFolder(kind, str(source), config, state)
    raise InputError(f"{source}: not a Vocos (config.yaml) or BigVGAN (config.json) vocoder folder")


def _download(repo_id: str) -> Path:
    """The repository's config and weights, through the Hub's cache."""
    files = sorted({name for c, ws, _ in LAYOUTS.values() for name in (c, *ws)})
    return hub_snapshot(repo_id, files, "'tokquant[vocos]' or 'tokquant[bigvgan]'")


def _read_config(path: Path) -> dict[str, Any]:
    raw = read_regular(path)
    try:
        data = (
            load_yaml(path, raw)
            if path.suffix == ".yaml"
            else json_loads(raw, str(path), unique_keys=True)
        )
    except ConfigError as exc:
        raise FormatError(str(exc)) from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: not a mapping of settings")
    return data
