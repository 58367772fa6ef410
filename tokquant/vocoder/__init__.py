"""Waveform decoders for tokens: a Vocos-style decoder (:mod:`.model`) trained on a
tokenizer's decoded features (:mod:`.train`, :mod:`.losses`), and decoding with it
(:mod:`.decoding`). Its file: :mod:`tokquant.formats.vocoder`."""
