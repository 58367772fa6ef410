"""The per-input loop every job that walks inputs runs: one input's failure is its own
line, never the run's end, unless the run cannot go on (a full disk)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from tokquant.errors import OutputError, OutputNameError, TokquantError
from tokquant.jobs.report import Progress

T = TypeVar("T")
Item = TypeVar("Item")


def attempt(work: Callable[[], T], failures: list[str]) -> T | None:
    """``work()`` for one input. A bad input (any :class:`TokquantError`, an output name
    that cannot exist included) adds its one line to ``failures`` and gives None; any
    other :class:`OutputError` (a full disk, an unwritable folder) stops the run, and
    what was written stays."""
    try:
        return work()
    except OutputNameError as exc:
        failures.append(str(exc))
    except OutputError:
        raise
    except TokquantError as exc:
        failures.append(str(exc))
    return None


def for_each(
    items: Sequence[Item],
    work: Callable[[Item], T],
    failures: list[str],
    progress: Progress,
    label: str,
) -> list[T | None]:
    """``work(item)`` for every item through :func:`attempt`, advancing ``progress``
    (started as ``label``) once per item; results in order, None where one failed."""
    progress.start(label, len(items))
    results: list[T | None] = []
    for item in items:
        results.append(attempt(lambda: work(item), failures))  # noqa: B023 - called at once
        progress.advance()
    return results
