"""Opening a decoder from what a user passes: None, a file, a folder, a Hub id, a loaded
model, or whatever a registered opener (or an installed package's ``tokquant.decoders``
entry point) knows."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.decoders.base import Decoder
from tokquant.decoders.codec import CodecDecoder
from tokquant.decoders.griffin_lim import GriffinLim
from tokquant.decoders.pretrained.decoder import PretrainedDecoder
from tokquant.decoders.pretrained.networks import PretrainedVocoder
from tokquant.decoders.trained.decoder import TrainedDecoder
from tokquant.decoders.trained.file import VocoderFile

if TYPE_CHECKING:
    from tokquant.tokenizer.model import Tokenizer

#: ``opener(spec, tok) -> Decoder | None``: tried in turn on what a user passes.
Opener = Callable[[Any, "Tokenizer"], "Decoder | None"]
_OPENERS: list[Opener] = []


def register(opener: Opener) -> Opener:
    """Add ``opener``, tried before the built-in decoders on every spec (a path, a
    folder, a Hub id, a name); it returns a :class:`Decoder`, or None to pass."""
    _OPENERS.append(opener)
    return opener


def unregister(opener: Opener) -> None:
    _OPENERS.remove(opener)


def open_decoder(spec: Any, tok: Tokenizer, *, n_iter: int = 32) -> Decoder:
    """The decoder ``spec`` names, checked against ``tok``: None is the codec's own
    decoder for a tokenizer on a codec, else Griffin-Lim (``n_iter`` iterations); a :class:`Decoder` is used as it is; anything else goes to
    the registered openers, the installed ``tokquant.decoders`` entry points, then the
    built-in ones (a train-vocoder file, a Vocos or BigVGAN folder or Hub id)."""
    if spec is None:  # a codec tokenizer's own decoder, else Griffin-Lim
        codec = tok.config.frontend.kind == "codec"
        decoder: Decoder = CodecDecoder() if codec else GriffinLim(n_iter)
    elif isinstance(spec, Decoder):
        decoder = spec
    else:
        decoder = _from_openers(spec, tok) or _builtin(spec)
    decoder.check(tok)
    return decoder


def _from_openers(spec: Any, tok: Tokenizer) -> Decoder | None:
    for opener in (*_OPENERS, *_entry_points()):
        found = opener(spec, tok)
        if found is not None:
            return found
    return None


def _entry_points() -> list[Opener]:
    """Openers that installed packages name in the ``tokquant.decoders`` group (your
    own environment's packages: nothing a manifest or a file can add)."""
    return [point.load() for point in entry_points(group="tokquant.decoders")]


def _builtin(spec: Any) -> Decoder:
    if isinstance(spec, VocoderFile):
        return TrainedDecoder(spec)
    if isinstance(spec, PretrainedVocoder):
        return PretrainedDecoder(spec)
    if Path(spec).is_file():
        return TrainedDecoder.open(Path(spec))
    return PretrainedDecoder.open(spec)
