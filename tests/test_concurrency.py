"""Two processes writing into one folder at the same moment, 20 times each way (issue 23):
``encode --shards`` with the same and with different inputs, and two exports. Each time
they either agree (both succeed, the output is whole) or one is refused in one line;
never do both succeed while the folder holds less than both runs promised.

The two processes start once (importing torch takes seconds) and meet at a barrier
before every run, so their runs really overlap."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.corpora import random_utterances, write_corpus
from tokquant.formats import corpus as corpus_format

REPEATS = 20


def _worker(commands, results, barrier) -> None:
    """Run each command (CLI arguments) once the other process is ready too."""
    while (args := commands.get()) is not None:
        barrier.wait()
        res = run_cli(*args)
        results.put((res.code, res.err))


class Pair:
    """Two worker processes that run one command each, at the same moment."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.barrier = barrier = context.Barrier(2)  # kept: the children open it by name
        self.queues = [(context.Queue(), context.Queue()) for _ in range(2)]
        self.procs = [context.Process(target=_worker, args=(c, r, barrier), daemon=True)
                      for c, r in self.queues]  # fmt: skip
        for proc in self.procs:
            proc.start()

    def run(self, first: list, second: list) -> list[tuple[int, str]]:
        for (commands, _), args in zip(self.queues, (first, second), strict=True):
            commands.put([str(a) for a in args])
        return [results.get(timeout=120) for _, results in self.queues]

    def close(self) -> None:
        for commands, _ in self.queues:
            commands.put(None)
        for proc in self.procs:
            proc.join(timeout=30)


@pytest.fixture(scope="module")
def pair():
    workers = Pair()
    yield workers
    workers.close()


def _refusal(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


def _keys(root: Path) -> set[str]:
    return set(corpus_format.Corpus(root).keys())


def _inputs(tmp_path: Path, corpus: Path) -> tuple[Path, Path]:
    """Two input folders of different files (keys ``a b sub/c sub/deeper/d`` and ``x*``)."""
    other = tmp_path / "other"
    other.mkdir()
    for i, src in enumerate(sorted(corpus.rglob("*.npy"))):
        np.save(other / f"x{i}.npy", np.load(src)[::-1].copy())
    return corpus, other


def test_two_encodes_into_one_corpus_refuse_or_agree(tmp_path, pair, trained, corpus):
    first, second = _inputs(tmp_path, corpus)
    want = {first: {"a", "b", "sub/c", "sub/deeper/d"}, second: {f"x{i}" for i in range(4)}}
    outcomes = {"both": 0, "one refused": 0}
    for rep in range(REPEATS):
        for same in (True, False):
            root = tmp_path / f"c{rep}-{same}"
            inputs = (first, first) if same else (first, second)
            runs = pair.run(*[["encode", trained, data, "--out", root, "--shards",
                               "--shard-size", "1", "-q"] for data in inputs])  # fmt: skip
            ok = [data for (code, _), data in zip(runs, inputs, strict=True) if code == 0]
            for code, err in runs:
                if code != 0:
                    assert "another tokquant run" in _refusal(code, err) or "other inputs" in err
            assert ok, runs
            if not same:
                assert len(ok) == 1, runs  # two different runs can never both have "finished"
            assert _keys(root) == want[ok[0]]
            assert run_cli("verify", root).code == 0
            outcomes["both" if len(ok) == 2 else "one refused"] += 1
            shutil.rmtree(root)
    assert sum(outcomes.values()) == 2 * REPEATS


@pytest.mark.parametrize("to", ["parquet", "km"])
def test_two_exports_into_one_folder_refuse_or_agree(tmp_path, pair, to):
    cards = (256, 256)
    root = write_corpus(tmp_path / "c", random_utterances(40, cards, seed=4), cards, shard_size=4)
    args = ["--to", to, "--workers", "1", "-q"] + (["--layout", "interleave"] if to == "km" else [])
    reference = tmp_path / "ref"
    assert run_cli("export", root, "--out", reference, *args).code == 0
    want = {p.relative_to(reference).as_posix(): p.read_bytes()
            for p in reference.rglob("*") if p.is_file()}  # fmt: skip
    for rep in range(REPEATS):
        out = tmp_path / f"o{rep}"
        runs = pair.run(*[["export", root, "--out", out, *args]] * 2)
        assert any(code == 0 for code, _ in runs), runs
        for code, err in runs:
            if code != 0:
                assert "another tokquant export" in _refusal(code, err)
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert got == want  # whole, byte for byte, with no lock or temp file left
        shutil.rmtree(out)
