"""Kaldi data folders: ``wav.scp`` (``utt-id path``), with ``segments`` (``seg-id utt-id
start end``, seconds) when one lies beside it or is given; ``feats.scp`` for feature
checkpoints, read with kaldiio (the ``kaldi`` extra).

Keys are the utterance (or segment) ids, as Kaldi's own tools name outputs. Relative
paths are read from the current folder, as Kaldi reads them, else beside the ``.scp``. A
``wav.scp`` entry that is a command (``utt-id sox ... |``) is refused, never run: convert
the audio to files first. A malformed line fails with its line number before anything is
encoded; an entry whose file is missing or a segment outside its recording fails alone
when it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tokquant.errors import InputError
from tokquant.sources.base import Source, manifest_lines
from tokquant.sources.lists import NamedFile
from tokquant.sources.segments import SegmentSource, seconds


def is_kaldi_scp(path: Path) -> bool:
    return path.is_file() and path.suffix == ".scp"


def resolve(entry: str, listed_in: Path) -> Path:
    """A path as Kaldi's tools read it: absolute, or relative to the folder they run in
    (the recipe's); failing that, relative to the file that lists it."""
    path = Path(entry)
    if path.is_absolute() or path.exists():
        return path
    return listed_in.parent / path


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a Kaldi text file, blank lines skipped."""
    for number, line in enumerate(manifest_lines(path), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def read_wav_scp(path: Path, segments: Path | None = None) -> list[Source]:
    """The utterances of a ``wav.scp`` (or, with ``segments``, its segments), in file
    order. ``segments`` None: the ``segments`` file beside it, if there is one."""
    recordings: dict[str, tuple[Source, int]] = {}
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if len(fields) < 2:
            raise InputError(f"{where}: expected 'utterance-id path', found {' '.join(fields)!r}")
        key, entry = fields[0], " ".join(fields[1:])
        if entry.endswith("|") or entry.startswith("|"):
            raise InputError(f"{where}: {key} is a command ({entry}); tokquant does not run "
                             f"commands from wav.scp: write the audio to files and list them")  # fmt: skip
        file = resolve(entry, path)
        if key in recordings:
            raise InputError(f"{where}: recording {key} is listed twice (first at line "
                             f"{recordings[key][1]})")  # fmt: skip
        recordings[key] = (NamedFile(key=Path(key), file=file), number)
    beside = path.parent / "segments"
    segments = segments if segments is not None else (beside if beside.is_file() else None)
    if segments is None:
        return [source for source, _ in recordings.values()]
    return _read_segments(segments, {k: s for k, (s, _) in recordings.items()})


def _read_segments(path: Path, recordings: dict[str, Source]) -> list[Source]:
    out: list[Source] = []
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if len(fields) != 4:
            raise InputError(f"{where}: expected 'segment-id recording-id start end', found "
                             f"{' '.join(fields)!r}")  # fmt: skip
        key, recording, start_text, end_text = fields
        try:
            start, end = seconds(start_text), seconds(end_text)
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{where}: start and end must be seconds, found {start_text!r} "
                             f"{end_text!r}") from None  # fmt: skip
        if end <= start:
            raise InputError(f"{where}: segment {key} ends ({end_text}) before it starts "
                             f"({start_text})")  # fmt: skip
        if recording not in recordings:
            raise InputError(f"{where}: recording {recording} is not in wav.scp")
        out.append(SegmentSource(key=Path(key), recording=recordings[recording], start=start,
                                 end=end, where=where))  # fmt: skip
    if not out:
        raise InputError(f"{path}: no segments")
    return out


@dataclass(frozen=True)
class ArkFeatures(Source):
    """One matrix of a Kaldi archive, addressed as ``feats.scp`` addresses it
    (``file.ark:offset``)."""

    address: str = field(kw_only=True)

    @property
    def origin(self) -> str:
        return self.address

    def read_features(self, layout: str):  # noqa: ANN201 - a numpy array
        import numpy as np

        kaldiio = _kaldiio()
        try:
            matrix = np.asarray(kaldiio.load_mat(self.address), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - kaldiio raises many kinds
            raise InputError(f"{self.address}: not a readable Kaldi matrix ({exc})") from None
        if matrix.ndim != 2:
            raise InputError(f"{self.address}: not a matrix (shape {list(matrix.shape)})")
        return matrix if layout == "tc" else matrix.T


def read_feats_scp(path: Path) -> list[Source]:
    """The matrices of a ``feats.scp`` (``utt-id file.ark:offset``), in file order."""
    _kaldiio()
    out: list[Source] = []
    for number, fields in _lines(path):
        if len(fields) != 2:
            raise InputError(f"{path}:{number}: expected 'utterance-id ark:offset', found "
                             f"{' '.join(fields)!r}")  # fmt: skip
        key, address = fields
        ark, _, offset = address.rpartition(":")
        if ark and offset.isdigit():
            address = f"{resolve(ark, path)}:{offset}"
        out.append(ArkFeatures(key=Path(key), address=address))
    return out


def _kaldiio():  # noqa: ANN202 - the module
    try:
        import kaldiio
    except ImportError:
        raise InputError("feats.scp needs kaldiio: pip install 'tokquant[kaldi]'") from None
    return kaldiio
