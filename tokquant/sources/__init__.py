"""Where a job's inputs come from: what users name on the command line, as an ordered
list of :class:`Source` s (a key, and a way to read the audio or features behind it).

:func:`sources_for` is the one place that decides what a command-line input is; each
kind of input lives in a module of its own (:mod:`.files` for files, folders and list
files).
"""

from __future__ import annotations

from pathlib import Path

from tokquant.choices import CHANNEL_MODES
from tokquant.config import TokenizerConfig
from tokquant.sources.base import FileSource, Source
from tokquant.sources.files import (
    LIST_SUFFIXES,
    expand_inputs,
    output_path,
    split_channels,
    strip_suffix,
    walk_files,
)


def takes_audio(config: TokenizerConfig) -> bool:
    return config.frontend.kind != "none"


def input_suffixes(config: TokenizerConfig) -> tuple[str, ...]:
    """What a tokenizer reads: audio files with a front end, feature files without."""
    from tokquant.audio.io import SUFFIXES as AUDIO_SUFFIXES
    from tokquant.formats.features import SUFFIXES as FEATURE_SUFFIXES

    return AUDIO_SUFFIXES if takes_audio(config) else FEATURE_SUFFIXES


def input_kind(config: TokenizerConfig) -> str:
    return "audio" if takes_audio(config) else "feature"


def sources_for(config: TokenizerConfig, specs: list[Path], *, channels: str = "mix",
                outputs: bool = True) -> list[Source]:  # fmt: skip
    """The inputs a tokenizer reads from ``specs``; ``channels="split"`` gives each audio
    channel its own source (keyed ``NAME.chC.EXT``). ``outputs``: the sources are
    mirrored to output files, so two that would write the same one are refused."""
    sources: list[Source] = list(
        expand_inputs(specs, input_suffixes(config), input_kind(config), outputs=outputs)
    )
    if takes_audio(config) and channels == "split":
        sources = split_channels(sources, Source.channels)
    return sources


__all__ = [
    "CHANNEL_MODES", "LIST_SUFFIXES", "FileSource", "Source", "expand_inputs", "input_kind",
    "input_suffixes", "output_path", "sources_for", "split_channels", "strip_suffix",
    "takes_audio", "walk_files",
]  # fmt: skip
