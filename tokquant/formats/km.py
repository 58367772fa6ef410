"""fairseq unit files: ``SPLIT.km`` (one utterance per line, its ids separated by spaces),
``SPLIT.keys`` (the corpus key of each line), ``dict.km.txt`` and, with dedup,
``SPLIT.durations`` (one line of frame counts per utterance).

``dict.km.txt`` lists every id ``0 .. V-1`` in order, with how often it occurs
(``ID COUNT``), so fairseq's ``Dictionary`` maps id ``u`` to the same index for every
corpus, even where a unit never occurs. Lines are in corpus order.

Shards are exported as parts (``parts/SPLIT-NNNNN.tsv``: ``key<TAB>ids<TAB>durations``
per line) that :func:`assemble` joins once all exist; a killed export resumes from the
parts it finished.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from tokquant.formats._atomic import atomic_path
from tokquant.formats._export_rows import ExportRows

DICT = "dict.km.txt"


def line_problem(key: str) -> str | None:
    """Why ``key`` cannot be one line of a ``.keys`` file (None if it can)."""
    if any(ch in key for ch in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        return f"key {key!r} holds a line or field break; km lists one key per line"
    return None


def write_part(path: Path, rows: ExportRows) -> None:
    """Write one shard's rows as a part file, atomically."""
    lines = []
    for i, key in enumerate(rows.keys):
        units = " ".join(map(str, rows.tokens.tokens(i).reshape(-1).tolist()))
        durations = rows.tokens.durations_of(i)
        counts = "" if durations is None else " ".join(map(str, durations.tolist()))
        lines.append(f"{key}\t{units}\t{counts}\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")


def assemble(parts: list[Path], out: Path, split: str, vocab_size: int, dedup: bool) -> None:
    """Join the parts (in order) into the split's files and the dictionary; memory is
    bounded by one part."""
    counts = np.zeros(vocab_size, np.int64)
    names = [f"{split}.km", f"{split}.keys"] + ([f"{split}.durations"] if dedup else [])
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(stack.enter_context(atomic_path(out / name)), "w",
                                          encoding="utf-8", newline="\n"))
                 for name in names]  # fmt: skip
        for part in parts:
            rows = [line.split("\t") for line in part.read_text(encoding="utf-8").split("\n")[:-1]]
            for column, file in zip((1, 0, 2), files, strict=False):
                file.write("".join(row[column] + "\n" for row in rows))
            ids = " ".join(row[1] for row in rows if row[1]).split()
            counts += np.bincount(np.array(ids, np.int64), minlength=vocab_size)
    with atomic_path(out / DICT) as tmp:
        tmp.write_text("".join(f"{u} {int(c)}\n" for u, c in enumerate(counts)))
