"""Kaldi data folders: ``wav.scp`` (``utt-id path``), with ``segments`` (``seg-id utt-id
start end``, seconds) when one lies beside it or is given; ``feats.scp`` for feature
checkpoints, read with kaldiio (the ``kaldi`` extra).

Keys are the utterance (or segment) ids, as Kaldi's own tools name outputs. Relative
paths are read from the current folder, as Kaldi reads them, else beside the ``.scp``. An
entry of any Kaldi file that is a command (``utt-id sox ... |``, ``| cmd``) is refused,
never run: convert the audio or features to files first. A malformed line fails with its line number before anything is
encoded; an entry whose file is missing or a segment outside its recording fails alone
when it is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokquant.errors import InputError
from tokquant.sources.base import Failed, Source, ascii_fields, manifest_lines
from tokquant.sources.lists import NamedFile
from tokquant.sources.segments import SegmentSource, seconds
from tokquant.storage.regular import check_regular


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
        fields = ascii_fields(line)
        if fields:
            yield number, fields


def _is_command(entry: str) -> bool:
    """A Kaldi "extended filename" that runs a shell (``cmd |`` reads a command's
    output, ``| cmd`` writes to one): tokquant never runs one."""
    return entry.startswith("|") or entry.endswith("|")


#: An address inside a Kaldi archive: ``file.ark:offset``, optionally a ``[rows]`` slice.
_ARK_ADDRESS = re.compile(r"(?P<file>.+):(?P<offset>[0-9]+)(?P<slice>\[[0-9:,]*\])?")


def read_wav_scp(path: Path, segments: Path | None = None) -> list[Source]:
    """The utterances of a ``wav.scp`` (or, with ``segments``, its segments), in file
    order. ``segments`` None: the ``segments`` file beside it, if there is one."""
    recordings: dict[str, tuple[Source, int]] = {}
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if len(fields) < 2:
            raise InputError(f"{where}: expected 'utterance-id path', found {' '.join(fields)!r}")
        key, entry = fields[0], " ".join(fields[1:])
        if _is_command(entry):
            raise InputError(
                f"{where}: {key} is a command ({entry}); tokquant does not run "
                f"commands from wav.scp: write the audio to files and list them"
            )
        if key in recordings:
            raise InputError(
                f"{where}: recording {key} is listed twice (first at line {recordings[key][1]})"
            )
        recordings[key] = (_recording(key, entry, path, where), number)
    if not recordings:
        raise InputError(f"{path}: lists no recordings")
    beside = path.parent / "segments"
    segments = segments if segments is not None else (beside if beside.is_file() else None)
    if segments is None:
        return [source for source, _ in recordings.values()]
    return _read_segments(segments, {k: s for k, (s, _) in recordings.items()})


def _recording(key: str, entry: str, listed_in: Path, where: str) -> Source:
    """A ``wav.scp`` entry as an input; an archive address (``file.ark:offset``, as
    ``wav-copy`` writes them) fails alone: tokquant reads audio files, not archives."""
    file = resolve(entry, listed_in)
    address = _ARK_ADDRESS.fullmatch(entry)
    if address and not file.exists() and resolve(address["file"], listed_in).exists():
        return Failed(
            key=Path(key),
            where=where,
            message=f"{entry} is audio inside a Kaldi archive, which tokquant does "
            f"not read: write it out as files (wav-copy ark:... to wavs)",
        )
    return NamedFile(key=Path(key), file=file)


def _read_segments(path: Path, recordings: dict[str, Source]) -> list[Source]:
    out: list[Source] = []
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if len(fields) != 4:
            raise InputError(
                f"{where}: expected 'segment-id recording-id start end', found {' '.join(fields)!r}"
            )
        key, recording, start_text, end_text = fields
        try:
            start, end = seconds(start_text), seconds(end_text)
        except ValueError:
            raise InputError(
                f"{where}: start and end must be seconds (digits, one dot, an "
                f"optional exponent), found {start_text[:40]!r} "
                f"{end_text[:40]!r}"
            ) from None
        if end == start:
            raise InputError(f"{where}: segment {key} is empty (starts and ends at {start_text})")
        if end < start:
            raise InputError(
                f"{where}: segment {key} ends ({end_text}) before it starts ({start_text})"
            )
        if recording not in recordings:
            raise InputError(f"{where}: recording {recording} is not in wav.scp")
        out.append(
            SegmentSource(
                key=Path(key), recording=recordings[recording], start=start, end=end, where=where
            )
        )
    if not out:
        raise InputError(f"{path}: no segments")
    return out


@dataclass(frozen=True)
class ArkFeatures(Source):
    """One matrix of a Kaldi archive, addressed as ``feats.scp`` addresses it
    (``file.ark:offset``)."""

    address: str = field(kw_only=True)
    #: The archive file itself, checked to be a regular file before kaldiio opens it.
    ark: Path = field(kw_only=True)

    @property
    def origin(self) -> str:
        return self.address

    def read_features(self, layout: str):  # noqa: ANN201 - a numpy array

        kaldiio = _kaldiio()
        check_regular(self.ark)  # a FIFO would block kaldiio's open forever
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
            raise InputError(
                f"{path}:{number}: expected 'utterance-id ark:offset', found {' '.join(fields)!r}"
            )
        key, address = fields
        if _is_command(address):
            raise InputError(
                f"{path}:{number}: {key} is a command ({address}); tokquant does "
                f"not run commands from feats.scp: write the features to an "
                f"archive (copy-feats) and list that"
            )
        parts = _ARK_ADDRESS.fullmatch(address)
        if parts is None:
            raise InputError(
                f"{path}:{number}: expected 'utterance-id file.ark:offset', found {address!r}"
            )
        out.append(
            ArkFeatures(
                key=Path(key),
                ark=resolve(parts["file"], path),
                address=f"{resolve(parts['file'], path)}:{parts['offset']}{parts['slice'] or ''}",
            )
        )
    if not out:
        raise InputError(f"{path}: lists no matrices")
    return out


def _kaldiio():  # noqa: ANN202 - the module
    try:
        # optional extra: kaldiio
        import kaldiio
    except ImportError:
        raise InputError("feats.scp needs kaldiio: pip install 'tokquant[kaldi]'") from None
    return kaldiio
