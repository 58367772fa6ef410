"""Features back to a waveform, behind one interface: :class:`Decoder`.

Griffin-Lim (:mod:`.griffin_lim`), a decoder trained with ``train-vocoder``
(:mod:`.trained`) and a pretrained Vocos or BigVGAN model (:mod:`.pretrained`) each
implement it; :func:`open_decoder` turns what a user passes (None, a file, a folder, a
Hub id, or a loaded decoder) into one, checked against the tokenizer; :func:`decode` is
the one pipeline every caller (``Tokenizer.decode_audio``, ``decode --audio``, ``eval``)
runs: the decoder's waveform, the mel match where it applies, and the refusal of audio
that is not finite. A new decoder is one module: a :class:`Decoder` subclass and an
opener given to :func:`register` (or named in the ``tokquant.decoders`` entry-point group
of an installed package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokquant.decoders.base import Decoder, decode  # noqa: F401
    from tokquant.decoders.opening import open_decoder, register, unregister  # noqa: F401

#: Loaded on first use: a request reads the train-vocoder recipe without torch.
_LAZY = {
    "Decoder": "tokquant.decoders.base",
    "decode": "tokquant.decoders.base",
    "open_decoder": "tokquant.decoders.opening",
    "register": "tokquant.decoders.opening",
    "unregister": "tokquant.decoders.opening",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokquant.decoders' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
