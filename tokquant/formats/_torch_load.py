"""``torch.load`` for files from users: weights only, and quiet.

Refusing a pickle is the expected outcome for a hostile file, and torch warns about the
pickle protocol on its way to refusing it; that warning would add lines to tokquant's
one-line error, so it is silenced here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def quiet_torch_load(path: Path) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)
