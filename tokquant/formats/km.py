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

import shutil
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


def assemble(counts_paths: list[Path], out: Path, split: str, vocab_size: int,
             dedup: bool) -> None:  # fmt: skip
    """Join the parts (in order) into the split's files, then write the dictionary."""
    for column, name in enumerate(output_names(split, dedup)):
        with atomic_path(out / name) as tmp, open(tmp, "wb") as dest:
            for counts_path in counts_paths:
                with open(part_files(counts_path)[column], "rb") as src:
                    shutil.copyfileobj(src, dest, 1 << 20)
    counts = np.zeros(vocab_size, np.int64)
    for counts_path in counts_paths:
        counts += np.load(counts_path)
    with atomic_path(out / DICT) as tmp:
        tmp.write_text("".join(f"{u} {int(c)}\n" for u, c in enumerate(counts.tolist())))
