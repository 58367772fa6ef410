"""``encode --engine ray`` against the local run: same machine, same inputs, same cores.

Builds ``--utterances`` utterances (the bundled corpus's 30 files repeated under new keys)
into WebDataset tars of ``--per-tar`` each, then encodes them into a corpus twice, each in
a fresh process: the local engine (one process) and Ray (a local cluster of ``--cpus``
CPUs, one actor per CPU). It checks the two corpora hold the same codes key by key and
reports utterances/s, the Ray overhead as a ratio of wall times, and the task times Ray
measured, from which it projects the wall time on N nodes of the same size (the tars are
equal tasks spread over N x cpus actors; start-up is paid once).

    .venv/bin/python scripts/bench_ray.py                      # 1,000 utterances
    .venv/bin/python scripts/bench_ray.py --checkpoint runs/demo/logmel-rvq-8x1024.safetensors
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "scripts" / "sample_data" / "audio"
TQ = str(Path(sys.executable).parent / "tokquant")


def make_tars(root: Path, n: int, per_tar: int) -> str:
    import webdataset as wds

    files = sorted(SAMPLES.rglob("*.flac"))
    blobs = [f.read_bytes() for f in files]
    count = -(-n // per_tar)
    for t in range(count):
        with wds.TarWriter(str(root / f"part-{t:04d}.tar")) as sink:
            for i in range(t * per_tar, min(n, (t + 1) * per_tar)):
                sink.write({"__key__": f"utt{i:06d}", "flac": blobs[i % len(blobs)]})
    return str(root / f"part-{{0000..{count - 1:04d}}}.tar")


def train_checkpoint(root: Path) -> Path:
    """The demo's checkpoint where the demo has run, else a quickly trained one."""
    demo = ROOT / "runs/demo/logmel-rvq-8x1024.safetensors"
    if demo.is_file():
        return demo
    ckpt = root / "logmel-rvq-8x1024.safetensors"
    subprocess.run([TQ, "train", "--config", str(ROOT / "configs/logmel-rvq-8x1024.yaml"),
                    "--data", str(SAMPLES), "--out", str(ckpt), "--steps", "20", "-q"],
                   check=True, capture_output=True)  # fmt: skip
    return ckpt


def encode(ckpt: Path, spec: str, out: Path, shard_size: int, engine: str, cpus: int) -> dict:
    """One encode in a fresh process; its JSON summary and wall time (start-up included)."""
    command = [TQ, "encode", str(ckpt), spec, "--out", str(out), "--shards",
               "--shard-size", str(shard_size), "--engine", engine, "--json"]  # fmt: skip
    env = dict(os.environ)
    if engine == "ray":  # the local cluster gets the same cores as the local run
        env.update(RAY_ADDRESS="", TOKQUANT_BENCH_RAY_CPUS=str(cpus))
        command = [sys.executable, "-c", RAY_DRIVER, *command[1:]]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    summary = json.loads(done.stdout)
    summary["wall"] = time.perf_counter() - start
    return summary


# A driver that starts a local cluster of a given size, then runs the CLI in it (the CLI
# joins a cluster this process has started).
RAY_DRIVER = """
import os, sys, logging, ray
os.environ.pop("RAY_ADDRESS", None)
ray.init(num_cpus=int(os.environ["TOKQUANT_BENCH_RAY_CPUS"]), include_dashboard=False,
         log_to_driver=False, logging_level=logging.WARNING)
from tokquant.cli.app import main
main(sys.argv[1:])
"""


def projected(tasks: int, work: float, actors: int) -> float:
    """Wall time of ``tasks`` equal tasks (``work`` seconds in all) on ``actors`` workers."""
    return -(-tasks // actors) * work / tasks


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def same_codes(a: Path, b: Path) -> int:
    from tokquant.formats.corpus import Corpus

    left, right = Corpus(a), Corpus(b)
    assert sorted(left.keys()) == sorted(right.keys())
    for key in left.keys():
        assert np.array_equal(left[key], right[key]), key
    return len(left.keys())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=1000)
    parser.add_argument("--per-tar", type=int, default=50)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ckpt = args.checkpoint or train_checkpoint(root)
        spec = make_tars(root, args.utterances, args.per_tar)
        local = encode(ckpt, spec, root / "local", args.per_tar, "local", args.cpus)
        on_ray = encode(ckpt, spec, root / "ray", args.per_tar, "ray", args.cpus)
        keys = same_codes(root / "local", root / "ray")
    tasks, work = on_ray["tasks"], on_ray["task_seconds"]
    startup = on_ray["wall"] - projected(tasks, work, on_ray["actors"])
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; "
          f"{args.utterances} utterances ({local['frames']} frames) in "
          f"{tasks} tars; codes equal key by key ({keys} keys)")  # fmt: skip
    print(f"{'engine':<8}{'wall s':>8}{'utt/s':>8}")
    for name, run in (("local", local), ("ray", on_ray)):
        print(f"{name:<8}{run['wall']:8.2f}{args.utterances / run['wall']:8.1f}")
    print(f"ray / local wall time: {on_ray['wall'] / local['wall']:.2f}x "
          f"({on_ray['actors']} actors on {args.cpus} CPUs; task work {work:.2f} s, "
          f"start-up and driver {startup:.2f} s)")  # fmt: skip
    print(f"projected wall time on N nodes of {args.cpus} CPUs (start-up once):")
    for n in args.nodes:
        print(f"  {n:>3} nodes: {startup + projected(tasks, work, n * args.cpus):7.2f} s")


if __name__ == "__main__":
    main()
