"""Where a job's inputs come from: what users name on the command line, as an ordered
list of :class:`Source` s (a key, and a way to read the audio or features behind it).

:func:`sources_for` is the one place that decides what a command-line input is
(:func:`kind_of`); each kind lives in a module of its own: :mod:`.files` (files, folders,
list files), :mod:`.lists` (fairseq TSV, ``key<TAB>path``), :mod:`.kaldi` (``wav.scp``,
``segments``, ``feats.scp``), :mod:`.webdataset` (tars), :mod:`.hf` (Parquet, saved
datasets), :mod:`.lhotse` (manifests, Shar); :mod:`.segments` and :mod:`.blobs` are what several of them share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.audio.io import SUFFIXES as AUDIO_SUFFIXES
from tokquant.choices import CHANNEL_MODES
from tokquant.errors import InputError
from tokquant.formats.features import SUFFIXES as FEATURE_SUFFIXES
from tokquant.sources import hf, kaldi, lhotse, lists, webdataset
from tokquant.sources.base import FileSource, Source
from tokquant.sources.files import (
    LIST_SUFFIXES,
    expand_inputs,
    output_path,
    split_channels,
    strip_suffix,
    walk_files,
)
from tokquant.tokenizer.config import TokenizerConfig


def takes_audio(config: TokenizerConfig) -> bool:
    return config.frontend.kind != "none"


def input_suffixes(config: TokenizerConfig) -> tuple[str, ...]:
    """What a tokenizer reads: audio files with a front end, feature files without."""
    return AUDIO_SUFFIXES if takes_audio(config) else FEATURE_SUFFIXES


def input_kind(config: TokenizerConfig) -> str:
    return "audio" if takes_audio(config) else "feature"


@dataclass(frozen=True)
class SourceOptions:
    """How to read manifests and containers (the CLI's ``--audio-column`` & co.)."""

    #: Parquet / datasets: the column holding audio (bytes or paths)
    audio_column: str = "audio"
    #: Parquet / datasets: the column holding keys (None: ``id``, else file names)
    key_column: str | None = None
    #: WebDataset: the member (field) holding audio (None: the first audio one)
    audio_member: str | None = None
    #: Kaldi: the segments file of a wav.scp (None: the one beside it, if any)
    segments: Path | None = None


def sources_for(
    config: TokenizerConfig,
    specs: list[Path],
    *,
    channels: str = "mix",
    outputs: bool = True,
    options: SourceOptions | None = None,
) -> list[Source]:
    """The inputs a tokenizer reads from ``specs``: files, folders and list files, and
    the manifests and containers corpora live in (see :func:`kind_of`), in order.
    ``channels="split"`` gives each audio channel its own source. ``outputs``: the
    sources are mirrored to output files, so two files that would write the same one
    are refused."""
    options = options or SourceOptions()
    kinds = [kind_of(Path(spec), config) for spec in specs]
    if options.segments is not None and "kaldi" not in kinds:
        raise InputError("`segments` applies to a Kaldi wav.scp input; none was given")
    if all(kind == "files" for kind in kinds):  # one expansion: shared dedup and checks
        sources: list[Source] = list(
            expand_inputs(specs, input_suffixes(config), input_kind(config), outputs=outputs)
        )
    else:
        sources = []
        for spec, kind in zip(specs, kinds, strict=True):
            sources += _read(Path(spec), kind, config, options, outputs)
    if not sources:  # every reader refuses its own empty manifest; this is the backstop
        raise InputError(f"no {input_kind(config)} inputs in {', '.join(map(str, specs))}")
    if takes_audio(config) and channels == "split":
        sources = split_channels(sources, Source.channels)
    return sources


def kind_of(spec: Path, config: TokenizerConfig) -> str:
    """What an input is, from its name and (for folders) what it holds."""
    text = str(spec)
    if webdataset.is_compressed_tar(text):
        raise InputError(
            f"{spec}: a compressed tar; tokquant reads tar members at their "
            f"offsets, which needs an uncompressed tar (gunzip it, or write "
            f"WebDataset shards as .tar)"
        )
    if hf.is_dataset_dict(spec):
        raise InputError(
            f"{spec}: a DatasetDict (dataset_dict.json); name one split's folder "
            f"({', '.join(hf.dataset_dict_splits(spec))})"
        )
    if webdataset.is_webdataset(text):
        kind = "webdataset"
    elif lhotse.is_manifest(spec):
        kind = "lhotse"
    elif lhotse.is_shar(spec):
        kind = "shar"
    elif hf.is_saved_dataset(spec) or hf.is_parquet(spec):
        kind = "table"
    elif webdataset.is_tar_folder(spec):
        kind = "webdataset"
    elif kaldi.is_kaldi_scp(spec):
        named = {"wav.scp": "kaldi", "feats.scp": "kaldi-feats"}.get(spec.name)
        kind = named or ("kaldi" if takes_audio(config) else "kaldi-feats")
    elif lists.is_fairseq_tsv(spec):
        kind = "fairseq"
    elif lists.is_keyed_list(spec):
        kind = "keyed-list"
    else:
        return "files"
    audio = kind != "kaldi-feats"
    if audio != takes_audio(config) and kind != "keyed-list":  # key<TAB>path: either
        holds = "audio" if audio else "features"
        raise InputError(
            f"{spec}: holds {holds}; this checkpoint reads {input_kind(config)} inputs"
        )
    return kind


def _read(
    spec: Path, kind: str, config: TokenizerConfig, options: SourceOptions, outputs: bool
) -> list[Source]:
    if kind == "lhotse":
        return lhotse.read_manifest(spec)
    if kind == "shar":
        return lhotse.read_shar(spec)
    if kind == "webdataset":
        return webdataset.read_webdataset(str(spec), options.audio_member)
    if kind == "table":
        return hf.read_tables(
            spec, audio_column=options.audio_column, key_column=options.key_column
        )
    if kind == "kaldi":
        return kaldi.read_wav_scp(spec, options.segments)
    if kind == "kaldi-feats":
        return kaldi.read_feats_scp(spec)
    if kind == "fairseq":
        return lists.read_fairseq_tsv(spec)
    if kind == "keyed-list":
        return lists.read_keyed_list(spec)
    return list(expand_inputs([spec], input_suffixes(config), input_kind(config), outputs=outputs))


__all__ = [
    "CHANNEL_MODES",
    "LIST_SUFFIXES",
    "FileSource",
    "Source",
    "SourceOptions",
    "kind_of",
    "expand_inputs",
    "input_kind",
    "input_suffixes",
    "output_path",
    "sources_for",
    "split_channels",
    "strip_suffix",
    "takes_audio",
    "walk_files",
]
