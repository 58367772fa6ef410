"""The README.md written beside an export: a Hugging Face dataset card.

Its YAML header tells ``datasets`` which files form the split; the body says what a
reader of the tokens needs and cannot guess: the checkpoint that made them, the frame
rate, each column's cardinality, the layout, the offsets, the vocabulary size, the pad
id, and how to turn a row back into codes. No timestamps, so a re-run writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokquant.data.layouts import LAYOUT_SHAPES
from tokquant.storage.atomic import atomic_path

_LOAD = {
    "parquet": "from datasets import load_dataset\n\n"
    'data = load_dataset("parquet", data_dir=".")["{split}"]   # this folder\n'
    'row = data.with_format("numpy")[0]   # row["codes"]: {shape}',
    "webdataset": "import webdataset as wds\n\n"
    'data = wds.WebDataset("{split}-{{00000..{last:05d}}}.tar").decode()\n'
    'sample = next(iter(data))   # sample["codes.npy"]: {shape}',
    "km": 'units = [list(map(int, line.split())) for line in open("{split}.km")]\n'
    'keys = open("{split}.keys").read().splitlines()',
}


def write_card(
    path: Path,
    info: dict[str, Any],
    *,
    columns: list[tuple[str, str, str]],
    data_files: dict[str, str] | None,
    last_shard: int,
) -> None:
    """Write the card for an export described by ``info`` (see ``jobs.export``);
    ``columns`` are ``(name, type, meaning)`` rows; ``data_files`` the file pattern of
    each split the folder holds (``datasets`` loads each as a split)."""
    lay = info["layout"]
    shape = LAYOUT_SHAPES[lay]
    durations = ", durations" if info["dedup"] else ""
    load = _LOAD[info["format"]].format(split=info["split"], shape=shape, last=last_shard)
    cards = ", ".join(str(c) for c in info["cardinalities"])
    configs = _configs(data_files)
    lines = [
        "---",
        *configs,
        "tags:",
        "- tokquant",
        "- audio-tokens",
        "---",
        "",
        "# Discrete audio tokens made by tokquant",
        "",
        f"Exported by tokquant {info['tokquant']} from a corpus of {info['utterances']} "
        f"utterances ({info['frames']} frames) encoded with checkpoint `{info['checkpoint_id']}`.",
        "",
        "| | |",
        "| --- | --- |",
        f"| format | {info['format']} |",
        f"| frame rate | {info['frame_rate']} frames/s |",
        f"| code columns (G) | {len(info['cardinalities'])}, cardinalities {cards} |",
        f"| layout | {lay}: codes {shape} per utterance |",
        f"| offsets | {_offsets_text(info)} |",
        f"| dedup | {'runs of identical frames collapsed; durations column' if info['dedup'] else 'no'} |",
        f"| vocabulary | {info['vocab_size']} ids{_pad_text(info)} |",
        f"| id dtype | {info['dtype']} |",
        "",
        "## Columns",
        "",
        "| name | type | meaning |",
        "| --- | --- | --- |",
        *(
            f"| {_cell(name)} | {_cell(kind)} | {_cell(meaning)} |"
            for name, kind, meaning in columns
        ),
        "",
        "## Use",
        "",
        "```python",
        load,
        "```",
        "",
        "Back to the corpus' codes `[num_frames, G]`:",
        "",
        "```python",
        "from tokquant.data import unflatten",
        "",
        f'codes = unflatten(tokens, {list(info["cardinalities"])}, layout="{lay}", '
        f"offsets={info['offsets']}{durations and ', durations=durations'})",
        "```",
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")


def _configs(data_files: dict[str, str] | None) -> list[str]:
    """The card's ``configs`` header: which files ``datasets`` loads as each split."""
    if data_files is None:
        return []
    splits = [f"  - split: {split}\n    path: {pattern}" for split, pattern in data_files.items()]
    return ["configs:", "- config_name: default", "  data_files:", *splits]


def _offsets_text(info: dict[str, Any]) -> str:
    if not info["offsets"]:
        return "no: each column keeps its own ids 0 .. K_g - 1"
    return f"yes: column g's code c is c + {info['column_offsets']}[g] (one flat vocabulary)"


def _pad_text(info: dict[str, Any]) -> str:
    if info["pad_id"] is None:
        return ""
    return f"; id {info['pad_id']} pads the delay pattern"


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell: a ``|`` would end the cell and a line break
    the table (metadata column names are the user's), so both are escaped."""
    escaped = text.replace("\\", "\\\\").replace("|", "\\|")
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in escaped
    )
