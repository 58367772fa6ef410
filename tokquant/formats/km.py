"""fairseq unit files: ``SPLIT.km`` (one utterance per line, its ids separated by spaces),
``SPLIT.keys`` (the corpus key of each line), ``dict.km.txt`` and, with dedup,
``SPLIT.durations`` (one line of frame counts per utterance).

``dict.km.txt`` lists every id ``0 .. V-1`` in order, with how often it occurs
(``ID COUNT``), so fairseq's ``Dictionary`` maps id ``u`` to the same index for every
corpus, even where a unit never occurs. Lines are in corpus order.

Shards are exported as parts (``parts/SPLIT-NNNNN.km``, ``.keys``, ``.durations`` and,
written last so that it marks the part complete, ``.counts.npy``) that :func:`assemble`
joins by copying bytes once all exist; a killed export resumes from the parts it finished.
"""

from __future__ import annotations

import heapq
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tokquant.formats._export_rows import ExportRows
from tokquant.storage.atomic import atomic_path

DICT = "dict.km.txt"


def line_problem(key: str) -> str | None:
    """Why ``key`` cannot be one line of a ``.keys`` file (None if it can)."""
    if any(ch in key for ch in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        return f"key {key!r} holds a line or field break; km lists one key per line"
    return None


def output_names(split: str, dedup: bool = True) -> list[str]:
    """The split's files, in a part's order: units, keys and (with dedup) durations."""
    return [f"{split}.km", f"{split}.keys", f"{split}.durations"][: 3 if dedup else 2]


def part_files(counts_path: Path) -> list[Path]:
    """A part's text files, beside its counts file (``.../SPLIT-NNNNN.counts.npy``)."""
    stem = counts_path.name.removesuffix(".counts.npy")
    return [counts_path.with_name(f"{stem}{suffix}") for suffix in (".km", ".keys", ".durations")]


def write_part(counts_path: Path, rows: ExportRows) -> None:
    """Write one shard's rows as a part: its three text files, then its id counts."""
    tokens = rows.tokens
    units = _lines(tokens.rows.reshape(-1), tokens.row_offsets * tokens.rows.shape[1])
    texts = [units, "".join(f"{key}\n" for key in rows.keys)]
    if tokens.durations is not None and tokens.duration_offsets is not None:
        texts.append(_lines(tokens.durations, tokens.duration_offsets))
    for path, text in zip(part_files(counts_path), texts, strict=False):
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    counts = np.bincount(tokens.rows.reshape(-1).astype(np.int64), minlength=rows.layout.vocab_size)
    with atomic_path(counts_path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, counts.astype(np.int64))


def _lines(values: np.ndarray, offsets: np.ndarray) -> str:
    """One line per utterance: its values separated by spaces. Numbers are spelled through
    a table of the distinct values (6x faster than ``str`` per number)."""
    distinct, index = np.unique(values, return_inverse=True)
    words = np.array([str(v) for v in distinct.tolist()], dtype=object)[index].tolist()
    bounds = offsets.tolist()
    return "".join(
        " ".join(words[a:b]) + "\n" for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    )


def assemble(
    counts_paths: list[Path],
    out: Path,
    split: str,
    vocab_size: int,
    dedup: bool,
    positions: list[list[int] | None] | None = None,
) -> None:
    """Join the parts into the split's files, then write the dictionary. Lines follow
    the order the encode read its inputs: the parts' order, or where the corpus was
    written by several ranks (``positions``: each part's lines' places in that order)
    the parts' lines merged by position, one open part per rank."""
    ordered = positions is not None and all(p is not None for p in positions)
    for column, name in enumerate(output_names(split, dedup)):
        with atomic_path(out / name) as tmp, open(tmp, "wb") as dest:
            if ordered:
                runs = _rank_runs(list(zip(counts_paths, positions, strict=True)))  # type: ignore[arg-type]
                merged = heapq.merge(
                    *(_lines_of(run, column) for run in runs), key=lambda item: item[0]
                )
                dest.writelines(line for _, line in merged)
                continue
            for counts_path in counts_paths:
                with open(part_files(counts_path)[column], "rb") as src:
                    shutil.copyfileobj(src, dest, 1 << 20)
    counts = np.zeros(vocab_size, np.int64)
    for counts_path in counts_paths:
        counts += np.load(counts_path)
    with atomic_path(out / DICT) as tmp:
        tmp.write_text("".join(f"{u} {int(c)}\n" for u, c in enumerate(counts.tolist())))


def _rank_runs(parts: list[tuple[Path, list[int]]]) -> list[list[tuple[Path, list[int]]]]:
    """Consecutive parts whose positions keep rising: one rank's shards, in order."""
    runs: list[list[tuple[Path, list[int]]]] = []
    for part in parts:
        if runs and runs[-1][-1][1] and part[1] and part[1][0] > runs[-1][-1][1][-1]:
            runs[-1].append(part)
        else:
            runs.append([part])
    return runs


def _lines_of(run: list[tuple[Path, list[int]]], column: int) -> Iterator[tuple[int, bytes]]:
    """``(position, line)`` of one column's lines over a run of parts, a part at a time."""
    for counts_path, positions in run:
        with open(part_files(counts_path)[column], "rb") as src:
            lines = src.readlines()
        if len(lines) != len(positions):
            raise ValueError(f"{counts_path}: {len(lines)} lines for {len(positions)} positions")
        yield from zip(positions, lines, strict=True)
