"""Joining rank parts into ``manifest.json`` (``tokquant merge``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokquant.errors import InputError
from tokquant.formats.corpus.keys import MANIFEST
from tokquant.formats.corpus.manifest import _PART_ONLY, Manifest


def merge_parts(root: Path, parts: Iterable[Path] | None = None) -> Manifest:
    """Join rank manifests (all ``manifest.rank*.json`` in ``root`` by default) into
    ``root/manifest.json``; refuses incomplete parts, mixed checkpoints or duplicate keys."""
    root = Path(root)
    paths = sorted(parts if parts else root.glob("manifest.rank*-of-*.json"))
    if not paths:
        raise InputError(f"{root}: no rank manifests (manifest.rank*-of-*.json) to merge")
    merged: Manifest | None = None
    seen: dict[str, str] = {}
    worlds, ranks = set(), set()
    for path in paths:
        part = Manifest.read(path)
        if not part.extra.get("complete"):
            raise InputError(f"{path}: rank {part.extra.get('rank')} has not finished")
        worlds.add(part.extra.get("world_size"))
        ranks.add(part.extra.get("rank"))
        if merged is None:
            extra = {k: v for k, v in part.extra.items() if k not in _PART_ONLY}
            merged = Manifest(
                part.checkpoint_id, part.quantizer, part.columns, part.frame_rate, extra=extra
            )
        elif part.checkpoint_id != merged.checkpoint_id:
            raise InputError(f"{path}: made by another checkpoint than {paths[0]}")
        elif part.extra.get("run") != merged.extra.get("run"):
            raise InputError(
                f"{path}: a part of another run than {paths[0]} "
                f"({_difference(merged.extra.get('run'), part.extra.get('run'))}); "
                f"merge one run's parts, or encode every rank again"
            )
        for shard in part.shards:
            if (Path(path).parent / shard.file).resolve().parent != root.resolve():
                raise InputError(f"{path}: shard {shard.file} is not in {root}")
            for e in shard.entries:
                if e.key in seen:
                    raise InputError(f"key {e.key!r} is in both {seen[e.key]} and {path}")
                seen[e.key] = str(path)
            merged.shards.append(shard)
        merged.failures += part.failures
    if len(worlds) > 1:
        shown = ", ".join(str(w) for w in sorted(worlds, key=str))
        raise InputError(
            f"{root}: rank manifests of runs with different world sizes ({shown}); merge one "
            f"run's parts (name them) or remove the other run's files"
        )
    if len(worlds) == 1:
        world = worlds.pop()
        if isinstance(world, int) and ranks != set(range(world)):
            missing = sorted(set(range(world)) - ranks)
            raise InputError(f"{root}: rank manifests missing for ranks {missing}")
    assert merged is not None
    merged.write(root / MANIFEST)
    return merged


def _difference(a: object, b: object) -> str:
    """What tells two runs apart, in words."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return "one records no run, written by an older tokquant"
    names = {"inputs": "other inputs", "checkpoint_id": "another checkpoint"}
    differ = [
        names.get(k, f"{k} {a.get(k)!r} vs {b.get(k)!r}")
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
    return ", ".join(differ) or "other settings"
