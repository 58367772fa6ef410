"""Where a job's inputs come from: what users type (files, folders, list files) expanded
into an ordered list of :class:`InputItem`, and each item's features.

Each input carries a ``key``: its path relative to the folder or list it came from (or its
bare name when given directly), which outputs mirror under ``--out``. An input is a
feature file, or an audio file when the checkpoint has a front end; audio is streamed in
chunks of whole blocks (see :mod:`tokquant.audio.frontend`). Folder searches never pick
up tokquant's own outputs (token files, corpus shards and manifests), so ``--out`` may be
the input folder and a re-run still sees only the real inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tokquant.audio.frontend import (
    DEFAULT_CHUNK_FRAMES,
    FrontEnd,
    channel_count,
    frontend_for,
    stream_features,
)
from tokquant.audio.io import SUFFIXES as AUDIO_SUFFIXES
from tokquant.config import TokenizerConfig
from tokquant.errors import InputError
from tokquant.formats.corpus import is_corpus_file
from tokquant.formats.features import SUFFIXES as FEATURE_SUFFIXES
from tokquant.formats.tokens import SUFFIX as TOKENS_SUFFIX

if TYPE_CHECKING:
    from tokquant.jobs.report import Progress

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class InputItem:
    """One input: its path, the key its outputs mirror, and (audio) the channel to use."""

    path: Path
    key: Path
    channel: int | None = None


def _matches(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def _is_own_output(path: Path, suffixes: tuple[str, ...]) -> bool:
    """A token file or corpus file, unless token files are what is being searched for."""
    if TOKENS_SUFFIX in suffixes:
        return False
    return path.name.lower().endswith(TOKENS_SUFFIX) or is_corpus_file(path)


def expand_inputs(
    specs: list[str | Path],
    suffixes: tuple[str, ...],
    what: str,
    *,
    outputs: bool = True,
) -> list[InputItem]:
    """Files as given, folders searched recursively by suffix, list files line by line.

    A file reached twice counts once. Raises InputError for a missing path, a folder or
    list with no inputs, or (when ``outputs``: the inputs are mirrored to output files)
    two different files that would write the same output.
    """
    items: list[InputItem] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _matches(p, suffixes))
            found = [
                p for p in found if not p.name.startswith(".") and not _is_own_output(p, suffixes)
            ]
            if not found:
                raise InputError(f"{path}: no {what} files ({', '.join(suffixes)}) in this folder")
            items += [InputItem(p, p.relative_to(path)) for p in found]
        elif (
            path.is_file() and path.suffix.lower() in LIST_SUFFIXES and not _matches(path, suffixes)
        ):
            items += _read_list(path, suffixes, what)
        elif path.is_file():
            if not _matches(path, suffixes):
                raise InputError(f"{path}: not a {what} file (expected {', '.join(suffixes)})")
            items.append(InputItem(path, Path(path.name)))
        else:
            raise InputError(f"{path}: no such file or folder")
    if not items:
        raise InputError(f"no {what} inputs given")
    # The same file reached twice (named and inside a named folder) counts once.
    unique: dict[Path, InputItem] = {}
    for item in items:
        unique.setdefault(item.path.resolve(), item)
    items = list(unique.values())
    seen: dict[Path, Path] = {}
    for item in items if outputs else []:
        stem = strip_suffix(item.key, suffixes)
        if stem in seen:
            # Named one by one, their folder keeps their paths apart; within one folder
            # only another name can.
            advice = (
                "rename one of them"
                if seen[stem].parent == item.path.parent
                else "pass their folder instead"
            )
            raise InputError(
                f"{seen[stem]} and {item.path} would write the same output ({stem}); {advice}"
            )
        seen[stem] = item.path
    return items


def _read_list(path: Path, suffixes: tuple[str, ...], what: str) -> list[InputItem]:
    base = path.parent
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry)
        full = p if p.is_absolute() else base / p
        if not full.is_file():
            raise InputError(f"{path}:{number}: {entry}: no such file")
        if not _matches(full, suffixes):
            raise InputError(f"{path}:{number}: {entry}: not a {what} file")
        try:
            key = full.resolve().relative_to(base.resolve())
        except ValueError:
            key = Path(full.name)
        items.append(InputItem(full, key))
    if not items:
        raise InputError(f"{path}: list file names no {what} files")
    return items


def strip_suffix(key: Path, suffixes: tuple[str, ...]) -> Path:
    """``key`` without its input suffix; kept whole where what is left is no name
    (``.npy``, ``..npy``), so those still get outputs of their own."""
    name = key.name
    for s in sorted(suffixes, key=len, reverse=True):
        if name.lower().endswith(s) and name[: -len(s)] not in ("", ".", ".."):
            return key.with_name(name[: -len(s)])
    return key


class Keyed(Protocol):
    """Anything whose outputs mirror a relative ``key`` (an input, a token source)."""

    @property
    def key(self) -> Path: ...


def output_path(out_dir: Path, item: Keyed, in_suffixes: tuple[str, ...], out_suffix: str) -> Path:
    stem = strip_suffix(item.key, in_suffixes)
    return out_dir / stem.with_name(stem.name + out_suffix)


def split_channels(items: list[InputItem], channels_of: Callable[[Path], int]) -> list[InputItem]:
    """One item per channel, keyed ``NAME.chC.EXT`` so each channel gets its own output.

    A file whose channel count cannot be read stays one item; encoding it reports why.
    """
    out = []
    for item in items:
        try:
            count = channels_of(item.path)
        except InputError:
            out.append(item)
            continue
        for c in range(count):
            key = item.key.with_name(f"{item.key.stem}.ch{c}{item.key.suffix}")
            out.append(InputItem(item.path, key, c))
    return out


# What a tokenizer reads ----------------------------------------------------------------


def takes_audio(config: TokenizerConfig) -> bool:
    return config.frontend.kind != "none"


def input_suffixes(config: TokenizerConfig) -> tuple[str, ...]:
    """What a tokenizer reads: audio files with a front end, feature files without."""
    return AUDIO_SUFFIXES if takes_audio(config) else FEATURE_SUFFIXES


def input_kind(config: TokenizerConfig) -> str:
    return "audio" if takes_audio(config) else "feature"


def expand_for(config: TokenizerConfig, specs: list[Path], *, split: bool,
               outputs: bool = True) -> list[InputItem]:  # fmt: skip
    """The inputs a tokenizer reads from ``specs``; ``split`` gives each audio channel
    its own item."""
    items = expand_inputs(specs, input_suffixes(config), input_kind(config), outputs=outputs)
    if takes_audio(config) and split:
        items = split_channels(items, channel_count)
    return items


def frontend_of(config: TokenizerConfig) -> FrontEnd | None:
    """The shared front end of an audio tokenizer (None for feature files). Built in the
    calling thread, before any loader thread needs it."""
    return frontend_for(config.frontend) if takes_audio(config) else None


def iter_features(
    config: TokenizerConfig,
    path: Path,
    *,
    layout: str = "tc",
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
) -> Iterator[np.ndarray]:
    """``[t, dim]`` feature chunks of one input, checked against ``config.features.dim``
    (audio in chunks of ``chunk_frames``; None: the whole file at once)."""
    frontend = frontend_of(config)
    if frontend is not None:
        chunks = stream_features(path, frontend, channel=channel, chunk_frames=chunk_frames)
    else:
        from tokquant.formats.features import read_features

        chunks = iter([read_features(path, layout)])
    want = config.features.dim
    for chunk in chunks:
        if want is not None and chunk.shape[1] != want:
            hint = " (is the file [dim, frames]? try --layout ct)" if chunk.shape[0] == want else ""
            raise InputError(
                f"{path}: features have dim {chunk.shape[1]}, the checkpoint expects {want}{hint}"
            )
        yield chunk


def load_features(
    config: TokenizerConfig, path: Path, *, layout: str = "tc", channel: int | None = None
) -> np.ndarray:
    """All features of one input, ``[T, dim]``."""
    return np.concatenate(list(iter_features(config, path, layout=layout, channel=channel)))


def expected_frames(config: TokenizerConfig, path: Path) -> int | None:
    """Frames an audio input will give, from its header alone (None: a feature file, or
    a header that cannot be read, which fails later with a clean message)."""
    frontend = frontend_of(config)
    if frontend is None:
        return None
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - reported when the file is read
        return None
    rate = config.frontend.sample_rate
    return frontend.num_frames(-(-int(info.frames) * rate // max(int(info.samplerate), 1)))


def load_frames(
    config: TokenizerConfig, items: list[InputItem], progress: Progress | None = None
) -> np.ndarray:
    """Every frame of ``items`` in one ``[N, dim]`` array (training data)."""
    arrays: list[np.ndarray] = []
    if progress is not None:
        progress.start("load", len(items))
    for item in items:
        array = load_features(config, item.path, layout=config.features.layout,
                              channel=item.channel)  # fmt: skip
        if arrays and array.shape[1] != arrays[0].shape[1]:
            raise InputError(
                f"{item.path}: features have dim {array.shape[1]}, "
                f"{items[0].path} has {arrays[0].shape[1]}"
            )
        arrays.append(array)
        if progress is not None:
            progress.advance()
    return np.concatenate(arrays)
