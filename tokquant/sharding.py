"""Split work across ranks, and build a corpus that a killed run can resume.

Ranks: input ``i`` (in the sorted input order) belongs to rank ``i % world_size``, so
every input is encoded by exactly one rank whatever ``world_size`` is. The rank comes
from ``--num-shards/--shard-index``, else torchrun's ``RANK``/``WORLD_SIZE``, else a SLURM
array's ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``, else SLURM's
``SLURM_PROCID``/``SLURM_NTASKS``.

Resume: a rank's inputs are cut into consecutive groups of ``shard_size``; group ``j``
becomes shard ``j``. A shard is written (atomically) only when complete and then listed
in the rank's manifest part (atomically), so after a kill at any moment the manifest
names only complete shards, and the next run redoes exactly the groups it lacks. Shards
and manifests hold no timestamps, so the result is byte-identical to an uninterrupted
run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tokquant.errors import InputError, OutputError
from tokquant.formats import corpus as corpus_format
from tokquant.formats.checkpoint import Checkpoint
from tokquant.inputs import InputItem, strip_suffix


def resolve_rank(
    num_shards: int | None, shard_index: int | None, environ: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """``(rank, world_size)`` from flags, torchrun or SLURM; ``(0, 1)`` when alone."""
    env = os.environ if environ is None else environ
    if num_shards is not None or shard_index is not None:
        if num_shards is None or shard_index is None:
            raise InputError("--num-shards and --shard-index go together")
        rank, world = shard_index, num_shards
    else:
        rank, world = 0, 1
        for r_var, w_var in (
            ("RANK", "WORLD_SIZE"),
            ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
            ("SLURM_PROCID", "SLURM_NTASKS"),
        ):
            if r_var in env and w_var in env:
                try:
                    rank, world = int(env[r_var]), int(env[w_var])
                except ValueError:
                    raise InputError(
                        f"{r_var}/{w_var} are not integers: {env[r_var]!r}, {env[w_var]!r}"
                    ) from None
                if r_var == "SLURM_ARRAY_TASK_ID" and "SLURM_ARRAY_TASK_MIN" in env:
                    rank -= int(env["SLURM_ARRAY_TASK_MIN"])
                break
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"shard index {rank} is not in [0, {world})")
    return rank, world


def rank_items(items: list[InputItem], rank: int, world: int) -> list[InputItem]:
    return items[rank::world]


def item_key(item: InputItem, suffixes: tuple[str, ...]) -> str:
    return corpus_format.check_key(strip_suffix(item.key, suffixes).as_posix())


@dataclass
class CorpusRun:
    done: int = 0
    resumed_shards: int = 0
    written_shards: int = 0
    frames: int = 0
    failures: list[str] = field(default_factory=list)


def _plan_id(keys: list[str], shard_size: int, checkpoint_id: str, cards: list[int]) -> str:
    blob = json.dumps([checkpoint_id, shard_size, keys, cards]).encode()
    return hashlib.sha256(blob).hexdigest()


def encode_corpus(
    checkpoint: Checkpoint,
    items: list[InputItem],
    out_dir: Path,
    *,
    suffixes: tuple[str, ...],
    rank: int,
    world: int,
    shard_size: int,
    overwrite: bool,
    encode: Callable[[list[InputItem]], list],  # items -> list[Encoded], in order
    on_item: Callable[[], None] | None = None,
    levels: int | None = None,
) -> CorpusRun:
    """Encode this rank's share of ``items`` into shards under ``out_dir`` (resumable)."""
    if shard_size < 1:
        raise InputError(f"--shard-size must be >= 1, found {shard_size}")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create ({exc.strerror or exc})") from None
    mine = rank_items(items, rank, world)
    keys = [item_key(it, suffixes) for it in mine]
    tok = checkpoint.tokenizer
    names, cards = tok.columns(levels)
    plan = _plan_id(keys, shard_size, checkpoint.id, cards)
    part_path = out_dir / corpus_format.part_name(rank, world)
    for stale in out_dir.glob(".*.tmp"):  # left by a killed run; never visible as output
        stale.unlink(missing_ok=True)

    if overwrite:
        for old in [part_path, *out_dir.glob(f"shard-r{rank:05d}-*.safetensors")]:
            old.unlink(missing_ok=True)
        if world == 1:
            (out_dir / corpus_format.MANIFEST).unlink(missing_ok=True)
    part = None
    if part_path.exists():
        part = corpus_format.read_manifest(part_path)
        if part.get("plan") != plan:
            raise InputError(
                f"{out_dir}: holds a run over other inputs, shard size or checkpoint; "
                f"pass --overwrite to start again"
            )
    if part is None:
        part = corpus_format.new_manifest(
            checkpoint_id=checkpoint.id,
            quantizer=tok.quantizer.config() | {"family": tok.config.quantizer.family},
            columns=[{"name": n, "cardinality": c} for n, c in zip(names, cards, strict=True)],
            frame_rate=tok.config.features.frame_rate,
        )  # fmt: skip
        part.update(rank=rank, world_size=world, plan=plan, shard_size=shard_size,
                    complete=False, failures=[])  # fmt: skip

    run = CorpusRun()
    done_files = {s["file"] for s in part["shards"]}
    for j, start in enumerate(range(0, len(mine), shard_size)):
        group = mine[start : start + shard_size]
        name = corpus_format.shard_name(rank, j)
        if name in done_files:
            run.resumed_shards += 1
            run.done += len(group)
            if on_item:
                for _ in group:
                    on_item()
            continue
        entries, listing, failures = [], [], []
        for item, result in zip(group, encode(group), strict=True):
            key = item_key(item, suffixes)
            if result.error is not None:
                failures.append([key, result.error])
            else:
                entries.append((key, result.codes))
                listing.append([key, str(item.path) + ("" if item.channel is None else f"#ch{item.channel}"),
                                int(result.codes.shape[0])])  # fmt: skip
                run.frames += int(result.codes.shape[0])
            if on_item:
                on_item()
        path = out_dir / name
        corpus_format.write_shard(path, entries, checkpoint_id=checkpoint.id, cardinalities=cards)
        part["shards"].append({
            "file": name, "sha256": corpus_format.sha256_of(path),
            "utterances": len(entries), "frames": sum(e[2] for e in listing), "entries": listing,
        })  # fmt: skip
        part["failures"] += failures
        corpus_format.write_manifest(part_path, part)
        run.written_shards += 1
        run.done += len(entries)
    part["complete"] = True
    corpus_format.write_manifest(part_path, part)
    run.failures = [f"{key}: {message}" for key, message in part["failures"]]
    if world == 1:
        corpus_format.merge_parts(out_dir, [part_path])
    return run
