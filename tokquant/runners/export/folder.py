"""An export folder's record (``OUT/.tokquant-export.json``): what each split's export is
and which files it wrote, so a re-run resumes, several splits share a folder, and
``overwrite`` deletes only what a recorded export wrote (a user's own files stay)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from tokquant.errors import FormatError, OutputError
from tokquant.storage.atomic import atomic_path
from tokquant.storage.folder import OutputFolder
from tokquant.storage.safe_json import loads as json_loads

PLAN = ".tokquant-export.json"
LOCK = ".tokquant-export.lock"


def check_out(out: Path, info: dict[str, Any], overwrite: bool) -> None:
    """``out`` must be new, empty, or hold tokquant exports: of this split, this same
    export (a resume) or, with ``overwrite``, another one; of other splits, ones that
    share this export's format and options (they are kept), or with ``overwrite`` any
    (their files are removed too; without it, the refusal says that they would be)."""
    OutputFolder(out).check()
    for folder in ("data", "parts"):  # an export writes into these: never through a link
        if (out / folder).is_symlink():
            raise OutputError(
                f"{out / folder}: is a symbolic link; tokquant writes into real "
                f"folders only (remove it)"
            )
    if (out / PLAN).is_file():
        splits = recorded_splits(out)
        split = info["split"]
        if overwrite:
            return
        if not splits:
            raise OutputError(
                f"{out}: holds an export whose record cannot be read; "
                f"`overwrite=True` to replace it"
            )
        if split in splits and splits[split].get("info") != info:
            raise OutputError(
                f"{out}: holds another export of split {split!r} (other corpus, "
                f"metadata or options); `overwrite=True` to replace it"
            )
        clash = _clashing(splits, info)
        if clash:
            raise OutputError(
                f"{out}: holds split(s) {', '.join(clash)} exported in another format or with "
                f"other options (the splits of one folder share them); `overwrite=True` would "
                f"delete their files too"
            )
    elif out.is_dir() and any(e.name != LOCK for e in os.scandir(out)):
        if (out / LOCK).exists():  # an export is writing its first files right now
            raise OutputError(busy(out))
        raise OutputError(
            f"{out}: is not empty and holds no tokquant export; choose an empty "
            f"folder (`overwrite=True` replaces only an earlier export)"
        )


#: What may differ between the splits of one export folder; all else they share.
_PER_SPLIT = (
    "split",
    "corpus_manifest_sha256",
    "metadata_sha256",
    "utterances",
    "frames",
    "tokquant",
)


def _shared(info: Any) -> dict[str, Any]:
    return {
        k: v for k, v in (info if isinstance(info, dict) else {}).items() if k not in _PER_SPLIT
    }


def _clashing(splits: dict[str, dict[str, Any]], info: dict[str, Any]) -> list[str]:
    """Other splits recorded in the folder that this export cannot stand beside."""
    return sorted(
        s
        for s, r in splits.items()
        if s != info["split"] and _shared(r.get("info")) != _shared(info)
    )


def busy(out: Path) -> str:
    return f"{out}: another tokquant export is writing into this folder; wait for it to finish"


def recorded_splits(out: Path) -> dict[str, dict[str, Any]]:
    """The exports a folder records, by split: each its ``info`` and ``outputs`` (the
    files it wrote). Empty for an unreadable record (an export of unknown files)."""
    try:
        data = json_loads((out / PLAN).read_bytes(), str(out / PLAN))
    except (OSError, FormatError):
        return {}
    if not isinstance(data, dict):
        return {}
    if isinstance(data.get("splits"), dict):
        return {k: v for k, v in data["splits"].items() if isinstance(v, dict)}
    if "info" not in data:  # written before outputs were recorded: the plan was the info
        data = {"info": data}
    split = data["info"].get("split") if isinstance(data["info"], dict) else None
    return {split if isinstance(split, str) else "": data}


def claim(folder: OutputFolder, info: dict[str, Any], overwrite: bool, outputs: list[str]) -> None:
    """Make ``out`` this export's folder (checked by :func:`check_out`): with
    ``overwrite``, the files of this split's earlier export and of other splits it
    cannot stand beside are removed (nothing else); the record then holds this split
    beside the splits kept."""
    out = folder.root
    splits = recorded_splits(out) if (out / PLAN).is_file() else {}
    if overwrite:
        dropped = {
            s: r for s, r in splits.items() if s == info["split"] or s in _clashing(splits, info)
        }
        splits = {s: r for s, r in splits.items() if s not in dropped}
        keep = set(outputs).union(*(_outputs_of(out, r) for r in splits.values()))
        for record in dropped.values():
            folder.remove(_outputs_of(out, record), keep)
        for sub in ("data", "parts"):
            with contextlib.suppress(OSError):
                (out / sub).rmdir()  # only when empty
    folder.clear_temps("data", "parts")
    splits[info["split"]] = {"info": info, "outputs": outputs}
    with atomic_path(out / PLAN) as tmp:
        tmp.write_text(json.dumps({"splits": splits}, indent=1, sort_keys=True) + "\n")


def _outputs_of(out: Path, record: dict[str, Any]) -> list[str]:
    names = record.get("outputs")
    if isinstance(names, list):
        return [n for n in names if isinstance(n, str)]
    info = record.get("info")
    return _legacy_outputs(out, info if isinstance(info, dict) else {})  # an older record


def _legacy_outputs(out: Path, info: dict[str, Any]) -> list[str]:
    """What an export recorded before outputs were listed wrote, by its format's names."""
    split = info.get("split")
    if not isinstance(split, str) or not split or not all(c.isalnum() or c in "_-" for c in split):
        return []
    patterns = {
        "parquet": [f"data/{split}-*-of-*.parquet"],
        "webdataset": [f"{split}-*.tar"],
        "km": [
            f"parts/{split}-*",
            f"{split}.km",
            f"{split}.keys",
            f"{split}.durations",
            "dict.km.txt",
        ],
    }.get(info.get("format"), [])
    found = [p.relative_to(out).as_posix() for pattern in patterns for p in out.glob(pattern)]
    return ["README.md", *found]
