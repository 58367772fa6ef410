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

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from tokquant.audio.frontend import (
    DEFAULT_CHUNK_FRAMES,
    AnyFrontEnd,
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
from tokquant.train import NextFrames

if TYPE_CHECKING:
    import torch

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
            found = sorted(p for p in walk_files(path) if _matches(p, suffixes))
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
                raise InputError(
                    f"{path}: not {_article(what)} {what} file (expected {', '.join(suffixes)}, "
                    f"a folder of them, or a list file ({', '.join(LIST_SUFFIXES)}) of their "
                    f"paths, one per line)"
                )
            items.append(InputItem(path, Path(path.name)))
        else:
            raise InputError(f"{path}: {_not_an_input(path)}")
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


def walk_files(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` (symlinked files included, symlinked folders not
    entered, as ``rglob`` does), walked with a stack instead of recursion, so a tree
    1,000 levels deep is read like any other. A path over the system's length limit
    (PATH_MAX) cannot be opened at all: InputError naming it."""
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                listed = list(entries)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InputError(f"{_shorten(current)}: path is over the system's length "
                                 f"limit ({len(os.fsencode(current))} bytes)") from None  # fmt: skip
            raise InputError(f"{_shorten(current)}: cannot list folder "
                             f"({exc.strerror or exc})") from None  # fmt: skip
        for entry in listed:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file():
                    yield Path(entry.path)
            except OSError:  # a dangling or looping link is no input
                continue


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _not_an_input(path: Path) -> str:
    """Why ``path``, neither a file nor a folder, was refused."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink():
            return f"a symbolic link to nothing ({os.readlink(path)})"
        if exc.errno == errno.ENOENT:
            return "no such file or folder"
        return f"cannot be read ({exc.strerror or exc})"
    return "not a regular file or folder (a FIFO, socket or device)"


def _shorten(path: str, keep: int = 60) -> str:
    """A path short enough for a one-line message (its start and end)."""
    return path if len(path) <= 2 * keep + 1 else f"{path[:keep]}…{path[-keep:]}"


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
            raise InputError(f"{path}:{number}: {entry}: not {_article(what)} {what} file")
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


def frontend_of(config: TokenizerConfig, device: torch.device | str = "cpu") -> AnyFrontEnd | None:
    """The shared front end of an audio tokenizer (None for feature files). Built in the
    calling thread, before any loader thread needs it; an SSL model runs on ``device``."""
    return frontend_for(config.frontend, device) if takes_audio(config) else None


def iter_features(
    config: TokenizerConfig,
    path: Path,
    *,
    layout: str = "tc",
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
    device: torch.device | str = "cpu",
) -> Iterator[np.ndarray]:
    """``[t, dim]`` feature chunks of one input, checked against ``config.features.dim``
    (audio in chunks of ``chunk_frames``; None: the whole file at once)."""
    frontend = frontend_of(config, device)
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
    config: TokenizerConfig, path: Path, *, layout: str = "tc", channel: int | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:  # fmt: skip
    """All features of one input, ``[T, dim]``."""
    chunks = iter_features(config, path, layout=layout, channel=channel, device=device)
    return np.concatenate(list(chunks))


def expected_frames(config: TokenizerConfig, path: Path) -> int | None:
    """Frames an audio input will give, from its header alone (None: a feature file, or
    a header that cannot be read, which fails later with a clean message)."""
    if not takes_audio(config):
        return None
    if config.frontend.kind == "ssl":
        from tokquant.audio.ssl import num_frames
    else:
        num_frames = frontend_of(config).num_frames
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - reported when the file is read
        return None
    rate = config.frontend.sample_rate
    return num_frames(-(-int(info.frames) * rate // max(int(info.samplerate), 1)))


class TrainingFrames(NamedTuple):
    """Training data: ``frames`` ``[N, dim]``, and ``lengths``, the frames of each input in
    order (they sum to N), so training knows which frames are neighbours in time. A
    sample's frames are not neighbours: ``lengths`` is None, and ``next_frames`` holds the
    frame after each one when it was asked for."""

    frames: np.ndarray
    lengths: list[int] | None
    next_frames: NextFrames | None = None


def load_frames(
    config: TokenizerConfig, items: list[InputItem], progress: Progress | None = None, *,
    max_frames: int | None = None, seed: int = 0, device: torch.device | str = "cpu",
    with_next: bool = False,
) -> TrainingFrames:  # fmt: skip
    """The frames of ``items`` (training data): every frame, or with ``max_frames`` a
    uniform sample of that many across all inputs, drawn while streaming so memory is
    bounded by ``max_frames`` (and one input's chunk), not by the corpus. ``with_next``
    also keeps each sampled frame's next frame (twice the sample's memory), for
    ``train.interpolate``."""
    sample = FrameSample(max_frames, seed, with_next) if max_frames is not None else None
    arrays: list[np.ndarray] = []
    lengths: list[int] = []
    dim: int | None = None
    if progress is not None:
        progress.start("load", len(items))
    for item in items:
        lengths.append(0)
        for chunk in iter_features(config, item.path, layout=config.features.layout,
                                   channel=item.channel, device=device):  # fmt: skip
            lengths[-1] += chunk.shape[0]
            if dim is None:
                dim = chunk.shape[1]
            elif chunk.shape[1] != dim:
                raise InputError(
                    f"{item.path}: features have dim {chunk.shape[1]}, {items[0].path} has {dim}"
                )
            if sample is None:
                arrays.append(chunk)
            else:
                sample.add(chunk)
        if sample is not None:
            sample.end_input()
        if progress is not None:
            progress.advance()
    if sample is not None:
        return TrainingFrames(sample.frames(), None, sample.next_frames())
    return TrainingFrames(np.concatenate(arrays), lengths)


class FrameSample:
    """A uniform sample of ``size`` frames from a stream of any length (reservoir
    sampling, Algorithm R, a chunk at a time): after ``n`` frames every one of them is in
    the sample with probability ``size / n``. ``with_next`` also keeps each kept frame's
    next frame in its input (the sample itself is the same); call :meth:`end_input` at
    the end of each input, so its last frame gets none."""

    def __init__(self, size: int, seed: int = 0, with_next: bool = False) -> None:
        if size < 1:
            raise InputError(f"--max-frames must be at least 1, found {size}")
        self.size = size
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        self.with_next = with_next
        self.reservoir: np.ndarray | None = None
        self.following: np.ndarray | None = None
        self.present = np.zeros(0, dtype=bool)
        self.positions = np.zeros(0, dtype=np.int64)
        self._open_slot: int | None = None  # holds the last frame seen; its next is to come

    def _grow(self, needed: int, dim: int) -> None:
        """Room for ``needed`` frames: the arrays grow (doubling, at most to ``size``) with
        what is read, so ``--max-frames`` far above the corpus costs the corpus, not the
        sample asked for."""
        have = 0 if self.reservoir is None else self.reservoir.shape[0]
        if needed <= have:
            return
        new = min(self.size, max(needed, 2 * have, 1024))
        self.reservoir = _resized(self.reservoir, (new, dim), np.float32)
        if self.with_next:
            self.following = _resized(self.following, (new, dim), np.float32)
            self.present = _resized(self.present, (new,), bool)
            self.positions = _resized(self.positions, (new,), np.int64)

    def add(self, chunk: np.ndarray) -> None:
        n = chunk.shape[0]
        if n == 0:
            return
        if self._open_slot is not None:
            self.following[self._open_slot] = chunk[0]
            self.present[self._open_slot] = True
        fill = max(0, min(self.size - self.seen, n))
        self._grow(self.seen + fill, chunk.shape[1])
        self._store(np.arange(fill), self.seen + np.arange(fill), chunk)
        last_slot = self.seen + n - 1 if fill == n else None  # where the chunk's last frame is
        rest = chunk[fill:]
        if rest.shape[0]:
            index = self.seen + fill + np.arange(rest.shape[0])  # 0-based stream positions
            slot = self.rng.integers(0, index + 1)  # frame i replaces slot j < size w.p. size/(i+1)
            kept = np.flatnonzero(slot < self.size)
            # Sequential semantics: of several frames drawn to one slot, the last one stays.
            last = len(kept) - 1 - np.unique(slot[kept][::-1], return_index=True)[1]
            self._store(fill + kept[last], slot[kept[last]], chunk)
            last_slot = int(slot[-1]) if slot[-1] < self.size else None
        self._open_slot = last_slot if self.with_next else None
        self.seen += n

    def _store(self, rows: np.ndarray, slots: np.ndarray, chunk: np.ndarray) -> None:
        """Put ``chunk[rows]`` in ``slots``, with their next frames where the chunk has them."""
        self.reservoir[slots] = chunk[rows]
        if self.with_next:
            inside = rows + 1 < chunk.shape[0]
            self.following[slots[inside]] = chunk[rows[inside] + 1]
            self.present[slots] = inside
            self.positions[slots] = self.seen + rows

    def end_input(self) -> None:
        self._open_slot = None

    def next_frames(self) -> NextFrames | None:
        if not self.with_next:
            return None
        m = min(self.size, self.seen)
        if self.following is None:
            return NextFrames(np.zeros((0, 0), np.float32), self.present[:0], self.positions[:0])
        return NextFrames(self.following[:m], self.present[:m], self.positions[:m])

    def frames(self) -> np.ndarray:
        if self.reservoir is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self.reservoir[: min(self.size, self.seen)]


def _resized(old: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A new array of ``shape`` starting with ``old``'s rows (the rest uninitialised)."""
    new = np.empty(shape, dtype=dtype)
    if old is not None:
        new[: old.shape[0]] = old
    return new
