"""Which share of the inputs this process encodes.

Input ``i`` (in the sorted input order) belongs to rank ``i % world_size``, so every input
is encoded by exactly one rank whatever ``world_size`` is. The rank comes from
``--num-shards/--shard-index``, else torchrun's ``RANK``/``WORLD_SIZE``, else a SLURM
array's ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``, else SLURM's
``SLURM_PROCID``/``SLURM_NTASKS``. ``RANK`` without ``WORLD_SIZE`` (or an array's task id
without its count) is refused: running as one process when the user meant many would
silently encode everything on every rank.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

from tokquant.errors import InputError

T = TypeVar("T")

_ENV_PAIRS = (
    ("RANK", "WORLD_SIZE"),
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
    ("SLURM_PROCID", "SLURM_NTASKS"),
)


def resolve_rank(
    num_shards: int | None, shard_index: int | None, environ: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """``(rank, world_size)`` from flags, torchrun or SLURM; ``(0, 1)`` when alone."""
    env = os.environ if environ is None else environ
    if num_shards is not None or shard_index is not None:
        if num_shards is None or shard_index is None:
            raise InputError("`num_shards` and `shard_index` go together")
        rank, world = shard_index, num_shards
    else:
        rank, world = _rank_from_env(env)
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"shard index {rank} is not in [0, {world})")
    return rank, world


def _rank_from_env(env: Mapping[str, str]) -> tuple[int, int]:
    for r_var, w_var in _ENV_PAIRS:
        # SLURM sets its task pair itself; a half-set pair of the others is a user's slip.
        if (r_var in env) != (w_var in env) and r_var != "SLURM_PROCID":
            have, missing = (r_var, w_var) if r_var in env else (w_var, r_var)
            raise InputError(
                f"{have} is set but {missing} is not; set both, or pass `num_shards` and `shard_index`"
            )
        if r_var in env and w_var in env:
            try:
                rank, world = int(env[r_var]), int(env[w_var])
            except ValueError:
                raise InputError(
                    f"{r_var}/{w_var} are not integers: {env[r_var]!r}, {env[w_var]!r}"
                ) from None
            if r_var == "SLURM_ARRAY_TASK_ID" and "SLURM_ARRAY_TASK_MIN" in env:
                try:
                    rank -= int(env["SLURM_ARRAY_TASK_MIN"])
                except ValueError:
                    raise InputError(
                        f"SLURM_ARRAY_TASK_MIN is not an integer: {env['SLURM_ARRAY_TASK_MIN']!r}"
                    ) from None
            return rank, world
    return 0, 1


def unit_count(items: Sequence[object]) -> int | None:
    """How many units (:func:`rank_items`) ``items`` come in; None where none has one
    (plain files and manifests: any share of them reads disjoint bytes)."""
    units = [getattr(item, "unit", None) for item in items]
    if all(u is None for u in units):
        return None
    return len({u if u is not None else ("input", i) for i, u in enumerate(units)})


def rank_items(items: Sequence[T], rank: int, world: int) -> list[T]:
    """This rank's share, in order: every ``world``-th input, or where inputs come in
    units (:attr:`tokquant.sources.Source.unit`: a tar file, a Parquet row group) every
    ``world``-th unit, so ranks read disjoint bytes."""
    units = [getattr(item, "unit", None) for item in items]
    if all(u is None for u in units):
        return list(items[rank::world])
    index: dict[object, int] = {}
    mine = []
    for item, unit in zip(items, units, strict=True):
        u = index.setdefault(unit if unit is not None else ("input", id(item)), len(index))
        if u % world == rank:
            mine.append(item)
    return mine
