"""The local engine: a plan run in this process, as one rank of ``num_shards`` (a
torchrun or SLURM rank when the plan names none; the whole input alone)."""

from __future__ import annotations

from tokquant.engines.outputs import to_corpus, to_files
from tokquant.engines.plan import EncodePlan
from tokquant.jobs.report import EncodeReport, Progress
from tokquant.runners.ranks import rank_items, resolve_rank
from tokquant.storage.folder import OutputFolder


def run(plan: EncodePlan, progress: Progress | None = None) -> EncodeReport:
    """Token files under ``plan.out``, or with ``plan.shards`` this rank's shards."""
    tok = plan.tokenizer()
    items = plan.units(tok)
    rank, world = resolve_rank(plan.num_shards, plan.shard_index)
    OutputFolder(plan.out).create()
    options = plan.checked_options(tok)
    if plan.shards:
        report = to_corpus(
            tok,
            items,
            plan.out,
            options,
            rank=rank,
            world=world,
            shard_size=plan.shard_size,
            progress=progress,
        )
    else:
        report = to_files(tok, rank_items(items, rank, world), plan.out, options, progress)
    report.rank, report.world_size = rank, world
    report.columns = plan.columns(tok, report.frames)
    return report
