"""Folders from the Hugging Face Hub, through its cache: the only network door, and only
for a name the user typed (``owner/name``), never one a manifest or a file holds.
``HF_HUB_OFFLINE=1`` reads the cache alone."""

from __future__ import annotations

import re
from pathlib import Path

from tokquant.errors import InputError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def is_hub_id(source: str | Path) -> bool:
    """``owner/name`` that is not a path here (nor a file name such as ``a/b.safetensors``)."""
    text = str(source)
    return (
        bool(_HUB_ID.fullmatch(text))
        and not Path(text).exists()
        and not Path(text).parent.is_dir()  # runs/vocos with runs/ here: a mistyped path
        and Path(text).suffix not in (".safetensors", ".pt", ".pth", ".bin")
    )


def hub_snapshot(repo_id: str, files: list[str], extra: str) -> Path:
    """The folder of ``files`` of the Hub repository ``repo_id`` in the Hub's cache
    (downloaded unless offline); one :class:`InputError` line when it cannot be had."""
    try:
        # optional extra: huggingface_hub
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InputError(
            f"{repo_id}: reading a Hub id needs huggingface_hub (pip install {extra}), or "
            f"pass a local folder"
        ) from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=files))
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, refused: all one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{repo_id}: cannot fetch from the Hugging Face Hub ({first})") from None
