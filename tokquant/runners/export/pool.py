"""Export's worker processes: shards over ``workers`` processes (in the order they finish),
Ctrl-C deferred while workers start, and workers that exit when their parent is gone."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


def map_shards(fn: Callable[[Any], Any], tasks: list[Any], workers: int | None) -> Iterator[Any]:
    """``fn`` over ``tasks`` in worker processes (results in order of completion), or
    inline when one worker would do.

    Workers start with SIGINT blocked (:func:`_sigint_deferred`): Ctrl-C, which a terminal
    sends to every process of the group, is the parent's to handle, where a worker
    interrupted while Python starts would die with "Fatal Python error: init_import_site".
    Each worker also watches its parent and exits when it is gone, so a SIGKILLed export
    leaves no worker (nor, with them, the resource tracker they keep alive) running."""
    count = min(workers or min(os.cpu_count() or 1, 8), len(tasks))
    if count <= 1:
        yield from map(fn, tasks)
        return
    context = multiprocessing.get_context("spawn")  # the parent may hold threads (progress)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(
            concurrent.futures.ProcessPoolExecutor(
                count, mp_context=context, initializer=_watch_parent, initargs=(os.getpid(),)
            )
        )
        with _sigint_deferred():  # submit starts the workers (spawn: one per submit)
            futures = [pool.submit(fn, task) for task in tasks]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C held back while workers start: blocked in this thread, and so in the
    processes it starts (a blocked mask survives fork and exec), and only noted by
    Python meanwhile (another thread may take the signal), then acted on at the end.
    Raising half-way through a start would leave a worker reading its start-up data
    from a closed pipe, and printing a traceback."""
    noted: list[int] = []
    try:
        handler = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    except ValueError:  # not the main thread: Python runs no handler here anyway
        handler = None
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
            if noted:
                signal.raise_signal(signal.SIGINT)


def _watch_parent(parent: int) -> None:
    """In a worker: exit as soon as the process that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="tokquant-watch-parent", daemon=True).start()
