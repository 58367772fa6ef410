"""Export throughput: a generated corpus of many utterances -> each format.

Writes a corpus straight from random codes (default: 100,000 utterances of 50-450 frames,
8 RVQ-like columns of 1024 codes, 1,000 utterances per shard), then runs
``tokquant export`` in a fresh process per case and reports utterances/s, corpus MB read
per second, output size against the corpus, and the peak RSS of the largest process.

    .venv/bin/python scripts/bench_export.py                 # the full 100k run
    .venv/bin/python scripts/bench_export.py --utterances 5000 --cases parquet
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tokquant.formats import corpus as corpus_format  # noqa: E402

CASES = {
    "parquet": ["--to", "parquet"],
    "parquet-delay-offsets": ["--to", "parquet", "--layout", "delay", "--offsets"],
    "webdataset": ["--to", "webdataset"],
    "km-interleave-offsets": ["--to", "km", "--layout", "interleave", "--offsets"],
    "parquet-dedup-1col": ["--to", "parquet", "--dedup"],
}


def generate(root: Path, n: int, columns: int, card: int, shard_size: int, seed: int = 0) -> None:
    """Shards written group by group (vectorised), so generating 100k utterances is quick."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    records = []
    for s, start in enumerate(range(0, n, shard_size)):
        count = min(shard_size, n - start)
        lengths = rng.integers(50, 451, size=count)
        codes = rng.integers(0, card, size=(int(lengths.sum()), columns))
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        group = [(f"spk{(start + i) % 500:03d}/utt{start + i:07d}", codes[bounds[i]:bounds[i + 1]])
                 for i in range(count)]  # fmt: skip
        name = corpus_format.shard_name(0, s)
        corpus_format.write_shard(root / name, group, checkpoint_id="bench",
                                  cardinalities=[card] * columns)  # fmt: skip
        entries = [corpus_format.Entry(k, f"/data/{k}.flac", len(c)) for k, c in group]
        records.append(corpus_format.ShardRecord(name, corpus_format.sha256_of(root / name),
                                                 count, int(lengths.sum()), entries))  # fmt: skip
    manifest = corpus_format.Manifest("bench", {"family": "rvq"},
                                      [{"cardinality": card}] * columns, 50.0, records)  # fmt: skip
    manifest.write(root / corpus_format.MANIFEST)


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_case(corpus: Path, out: Path, flags: list[str], workers: int) -> tuple[float, float]:
    """Seconds and the peak RSS (MiB) of the largest process of one export run."""
    cmd = [sys.executable, "-m", "tokquant", "export", str(corpus), "--out", str(out),
           "--workers", str(workers), "-q", *flags]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tq-bench-export-"))
    try:
        print(f"machine: {os.cpu_count()} CPUs; workers {args.workers}; "
              f"{resource.getpagesize()}-byte pages")  # fmt: skip
        corpora = {}
        for columns in sorted({1 if "1col" in c else args.columns for c in args.cases}):
            root = work / f"corpus-{columns}col"
            if not root.exists():
                started = time.perf_counter()
                card = 500 if columns == 1 else 1024  # 1 column: HuBERT-style k-means units
                generate(root, args.utterances, columns, card, args.shard_size)
                print(f"generated {root.name}: {args.utterances} utterances, "
                      f"{size_of(root) / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")  # fmt: skip
            corpora[columns] = root
        print(f"{'case':<24}{'seconds':>9}{'utt/s':>10}{'corpus MB/s':>13}{'output MB':>11}"
              f"{'out/corpus':>12}{'peak RSS MiB':>14}")  # fmt: skip
        for case in args.cases:
            corpus = corpora[1 if "1col" in case else args.columns]
            out = work / f"out-{case}"
            shutil.rmtree(out, ignore_errors=True)
            seconds, rss = run_case(corpus, out, CASES[case], args.workers)
            mb_in, mb_out = size_of(corpus) / 1e6, size_of(out) / 1e6
            print(f"{case:<24}{seconds:>9.1f}{args.utterances / seconds:>10.0f}"
                  f"{mb_in / seconds:>13.1f}{mb_out:>11.1f}{mb_out / mb_in:>12.2f}{rss:>14.0f}")  # fmt: skip
            if not args.keep:
                shutil.rmtree(out)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
