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

from tokquant.decoders.base import Decoder, decode
from tokquant.decoders.opening import open_decoder, register, unregister

__all__ = ["Decoder", "decode", "open_decoder", "register", "unregister"]
