"""Corpora where they live (issue 25): encoding N short utterances held as one WebDataset
source (tars of 1,000) or one Parquet source (row groups of 500) vs the same audio as
N loose files, through ``tokquant encode --shards`` in a fresh process each (wall time
and peak RSS from ``wait4``). Then the same sources at a quarter of N, to show memory does
not grow with the source.

    .venv/bin/python scripts/bench_sources.py CHECKPOINT [--n 10000]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "scripts" / "sample_data" / "audio"


def utterances(n: int) -> list[tuple[str, bytes]]:
    """``n`` distinct 0.8-1.6 s flac utterances cut from the bundled corpus."""
    waves = [sf.read(f, dtype="float32")[0] for f in sorted(SAMPLES.rglob("*.flac"))]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        wave = waves[i % len(waves)]
        length = int(rng.uniform(0.8, 1.6) * 16000)
        start = int(rng.integers(0, max(1, wave.size - length)))
        buffer = io.BytesIO()
        sf.write(buffer, wave[start : start + length], 16000, format="FLAC")
        out.append((f"spk{i % 50:02d}/utt{i:06d}", buffer.getvalue()))
    return out


def as_files(root: Path, items: list[tuple[str, bytes]]) -> Path:
    for key, blob in items:
        path = root / f"{key}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return root


def as_webdataset(root: Path, items: list[tuple[str, bytes]], per_tar: int = 1000) -> str:
    root.mkdir(parents=True)
    count = -(-len(items) // per_tar)
    for t in range(count):
        with tarfile.open(root / f"shard-{t:06d}.tar", "w") as tar:
            for key, blob in items[t * per_tar : (t + 1) * per_tar]:
                info = tarfile.TarInfo(f"{key}.flac")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return str(root / f"shard-{{000000..{count - 1:06d}}}.tar")


def as_parquet(root: Path, items: list[tuple[str, bytes]], per_group: int = 500) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True)
    audio = pa.array([{"bytes": b, "path": f"{k.rsplit('/', 1)[1]}.flac"} for k, b in items],
                     pa.struct([("bytes", pa.binary()), ("path", pa.string())]))  # fmt: skip
    table = pa.table({"id": [k for k, _ in items], "audio": audio})
    pq.write_table(table, root / "train.parquet", row_group_size=per_group)
    return root / "train.parquet"


#: Runs a command and prints its peak RSS in KiB. A small process of its own: a child's
#: ``ru_maxrss`` counts what its parent held when it was forked, and this script holds
#: the whole corpus in memory while it writes the sources.
_PEAK = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:], "
         "stdout=subprocess.DEVNULL); _, status, usage = os.wait4(child.pid, 0); "
         "print(usage.ru_maxrss if status == 0 else -1)")  # fmt: skip


def encode(checkpoint: Path, source: str | Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``tokquant encode --shards``."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "tokquant", "encode", str(checkpoint), str(source),
               "--out", str(out), "--shards", "--quiet"]  # fmt: skip
    start = time.perf_counter()
    peak = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    seconds = time.perf_counter() - start
    if int(peak) < 0:
        raise SystemExit(f"{source}: encode failed")
    return seconds, int(peak) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tq-bench-sources"))
    parser.add_argument("--pin-malloc", action="store_true",
                        help="MALLOC_MMAP_THRESHOLD_=131072 in the encoders: glibc's moving "
                        "threshold makes peak RSS vary by +-150 MiB between identical runs")  # fmt: skip
    args = parser.parse_args()
    if args.pin_malloc:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
    shutil.rmtree(args.workdir, ignore_errors=True)
    pinned = ", malloc threshold pinned" if args.pin_malloc else ""
    print(f"{os.cpu_count()} CPUs; checkpoint {args.checkpoint.name}{pinned}")
    results = {}
    for n in (args.n // 4, args.n):
        items = utterances(n)
        work = args.workdir / str(n)
        sources = {"files": as_files(work / "files", items),
                   "webdataset": as_webdataset(work / "wds", items),
                   "parquet": as_parquet(work / "pq", items)}  # fmt: skip
        for kind, source in sources.items():
            seconds, rss = encode(args.checkpoint, source, work / f"out-{kind}")
            results[kind, n] = (seconds, rss)
            print(f"{kind:>10} n={n:>6}: {seconds:6.1f} s, {n / seconds:6.0f} utt/s, "
                  f"peak RSS {rss:6.0f} MiB")  # fmt: skip
    n = args.n
    for kind in ("webdataset", "parquet"):
        speed = results["files", n][0] / results[kind, n][0]
        growth = results[kind, n][1] / results[kind, n // 4][1]
        print(
            f"{kind}: throughput x{speed:.2f} of files; peak RSS x{growth:.2f} for 4x the "
            f"utterances (files x{results['files', n][1] / results['files', n // 4][1]:.2f})"
        )
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
