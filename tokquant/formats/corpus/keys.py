"""Corpus names: file names of shards and rank parts, and the rule for a safe key.

Keys are relative paths without extension; they never contain ``..`` or start with ``/``,
so decoding a corpus cannot write outside its output folder.
"""

from __future__ import annotations

from pathlib import Path

from tokquant.errors import FormatError
from tokquant.formats.tokens import SUFFIX as TOKENS_SUFFIX

FORMAT = "tokquant-corpus"

SHARD_FORMAT = "tokquant-shard"

FORMAT_VERSION = "1"

MANIFEST = "manifest.json"

#: A key's path components must leave room for the longest suffix tokquant appends
#: (``.tokens.safetensors``) within the usual 255-byte file-name limit.
MAX_NAME_BYTES = 255 - len(TOKENS_SUFFIX)


def shard_name(rank: int, index: int) -> str:
    return f"shard-r{rank:05d}-{index:05d}.safetensors"


def part_name(rank: int, world_size: int) -> str:
    return f"manifest.rank{rank:05d}-of-{world_size:05d}.json"


def is_corpus(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def is_corpus_file(path: Path) -> bool:
    """A file tokquant writes into a corpus folder (shard, manifest or rank part)."""
    name = Path(path).name
    return name == MANIFEST or (
        name.startswith(("shard-r", "manifest.rank"))
        and (name.endswith(".safetensors") or name.endswith(".json"))
    )


def check_key(key: str) -> str:
    """Refuse keys that could escape an output folder."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\0" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise FormatError(f"corpus key {key!r} is not a safe relative path")
    return key


def name_problem(key: str) -> str | None:
    """Why a (safe) key cannot become output file names, or None when it can."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return f"key {key!r} holds a control character (newline, tab, ...)"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):  # undecodable bytes in a file name
        return f"key {key!r} is not valid UTF-8 (the manifest and exports need text keys)"
    for part in key.split("/"):
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            return (
                f"key component of {size} bytes is too long for a file name (max {MAX_NAME_BYTES})"
            )
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a corpus key (unsafe as a path, or no file name), or None."""
    try:
        check_key(key)
    except FormatError as exc:
        return str(exc)
    return name_problem(key)
