"""Corpora written straight from codes (no model), for export and Dataset tests and for
scripts/bench_export.py: any cardinalities, runs of repeated frames (so dedup has work),
empty utterances, keys with dots and folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokquant.formats import corpus as corpus_format


def random_utterances(
    n: int, cardinalities: tuple[int, ...], *, seed: int = 0, max_frames: int = 40,
    empty_every: int = 0,
) -> dict[str, np.ndarray]:  # fmt: skip
    """``n`` utterances of runs (1-3 frames) of random frames; every ``empty_every``-th
    one has no frames."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        frames = 0 if empty_every and i % empty_every == 3 else int(rng.integers(1, max_frames))
        runs = rng.integers(1, 4, size=frames)
        unique = np.stack([rng.integers(0, k, size=frames) for k in cardinalities], axis=1)
        codes = np.repeat(unique, runs, axis=0)[:frames]
        out[f"spk{i % 3}/utt.{i:06d}"] = codes.astype(np.int64)
    return out


def write_corpus(
    root: Path, utterances: dict[str, np.ndarray], cardinalities: tuple[int, ...], *,
    shard_size: int = 5, checkpoint_id: str = "test-checkpoint", frame_rate: float = 50.0,
) -> Path:  # fmt: skip
    """A merged corpus (manifest + shards) holding ``utterances`` in key order."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    items = sorted(utterances.items())
    records = []
    for s in range(0, len(items), shard_size):
        group = items[s : s + shard_size]
        name = corpus_format.shard_name(0, s // shard_size)
        corpus_format.write_shard(root / name, group, checkpoint_id=checkpoint_id,
                                  cardinalities=list(cardinalities))  # fmt: skip
        entries = [corpus_format.Entry(k, f"/data/{k}.npy", int(c.shape[0])) for k, c in group]
        records.append(corpus_format.ShardRecord(
            name, corpus_format.sha256_of(root / name), len(group),
            sum(e.frames for e in entries), entries))  # fmt: skip
    columns = [{"cardinality": int(k)} for k in cardinalities]
    manifest = corpus_format.Manifest(checkpoint_id, {"family": "rvq"}, columns, frame_rate,
                                      records)  # fmt: skip
    manifest.write(root / corpus_format.MANIFEST)
    return root
