"""Encode throughput: many short files and a few long ones, one at a time vs batched.

    python scripts/bench_encode.py [--short 2000] [--long 8] [--workdir /tmp/tq-bench]

Makes 80-dim feature files (short: 100-400 frames; long: 60,000 frames), a 16-bit BSQ
and an 8x1024 RVQ checkpoint (random weights: speed does not depend on training), then
times, in this process: ``encode_streamed`` per file (one at a time) and ``encode_items``
(background loading, several files per batch) writing token files, and the corpus mode
(``--shards``) through the CLI. Prints files/s, frames/s and the per-file overhead (time
per short file minus its frames at the long-file frame rate).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tokquant.api import load
from tokquant.engines.outputs import write_token_file
from tokquant.formats.features import SUFFIXES
from tokquant.formats.tokens import SUFFIX
from tokquant.runners.batcher import encode_items, encode_streamed
from tokquant.runners.features import FeatureReader
from tokquant.sources import expand_inputs, output_path
from tokquant.tokenizer.checkpoint import save_checkpoint
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.model import Tokenizer


def make_files(root: Path, count: int, frames: tuple[int, int], dim: int = 80) -> int:
    rng = np.random.default_rng(0)
    total = 0
    for i in range(count):
        n = int(rng.integers(*frames)) if frames[0] != frames[1] else frames[0]
        path = root / f"d{i // 500:02d}" / f"f{i:05d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.standard_normal((n, dim)).astype(np.float32))
        total += n
    return total


def checkpoint(root: Path, quantizer: dict) -> Path:
    config = TokenizerConfig.from_dict({"quantizer": quantizer, "features": {"dim": 80},
                                        "projection": {"kind": "linear" if quantizer["family"] != "rvq" else "none"}})  # fmt: skip
    torch.manual_seed(0)
    path = root / f"{quantizer['family']}.safetensors"
    save_checkpoint(Tokenizer(config), path)
    return path


def one_at_a_time(ckpt, items, out: Path) -> float:
    t0 = time.perf_counter()
    reader = FeatureReader.of(ckpt)
    for item in items:
        codes = encode_streamed(ckpt, reader, item)
        write_token_file(
            ckpt, output_path(out, item.stem(SUFFIXES), SUFFIX), codes, source=str(item.path)
        )
    return time.perf_counter() - t0


def batched(ckpt, items, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    for enc in encode_items(ckpt, items, workers=workers):
        write_token_file(
            ckpt,
            output_path(out, enc.item.stem(SUFFIXES), SUFFIX),
            enc.codes,
            source=str(enc.item.path),
        )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=2000)
    parser.add_argument("--long", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tq-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    short_frames = make_files(args.workdir / "short", args.short, (100, 400))
    long_frames = make_files(args.workdir / "long", args.long, (60_000, 60_000))
    print(f"{args.short} short files ({short_frames} frames), {args.long} long files ({long_frames} frames), "
          f"dim 80, torch threads {torch.get_num_threads()}")  # fmt: skip
    for quantizer in (
        {"family": "bsq", "code_dim": 16},
        {"family": "rvq", "num_levels": 8, "num_embeddings": 1024},
    ):
        ckpt_path = checkpoint(args.workdir, quantizer)
        ckpt = load(ckpt_path)
        short = expand_inputs([args.workdir / "short"], SUFFIXES, "feature")
        long = expand_inputs([args.workdir / "long"], SUFFIXES, "feature")
        t_long = batched(ckpt, long, args.workdir / "out-long", workers=2)
        rate = long_frames / t_long
        t_one = one_at_a_time(ckpt, short, args.workdir / "out-one")
        t_batch = batched(ckpt, short, args.workdir / "out-batch", workers=2)
        overhead_one = (t_one - short_frames / rate) / len(short) * 1000
        overhead_batch = (t_batch - short_frames / rate) / len(short) * 1000
        name = f"{quantizer['family']}"
        print(f"[{name}] long files: {rate:,.0f} frames/s")
        print(
            f"[{name}] short files one at a time: {len(short) / t_one:,.0f} files/s, "
            f"{short_frames / t_one:,.0f} frames/s, overhead {overhead_one:.2f} ms/file"
        )
        print(f"[{name}] short files batched:       {len(short) / t_batch:,.0f} files/s, "
              f"{short_frames / t_batch:,.0f} frames/s, overhead {overhead_batch:.2f} ms/file "
              f"(x{t_one / t_batch:.2f})")  # fmt: skip
        tq = Path(sys.executable).with_name("tokquant")
        t0 = time.perf_counter()
        subprocess.run([str(tq), "encode", str(ckpt_path), str(args.workdir / "short"), "--out",
                        str(args.workdir / f"corpus-{name}"), "--shards", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        t_cli = time.perf_counter() - t0
        print(
            f"[{name}] CLI encode --shards (process start included): {t_cli:.2f} s, "
            f"{len(short) / t_cli:,.0f} files/s"
        )


if __name__ == "__main__":
    main()
