"""Does every shipped config train without a non-finite value? Long runs on the bundled corpus.

Each config in configs/ (SSL configs only with --ssl, as they need their model weights) is
trained with ``tokquant train`` on the bundled audio for ``--steps`` steps and each seed;
configs without an audio front end get the log-mel front end of logmel-bsq-16bit.yaml, so
every quantizer and projection sees the same speech features (a config that then equals
another, as rvq-8x1024 equals logmel-rvq-8x1024, runs once). A run that stops on a
non-finite loss exits 2 with "training loss became nan at step N"; this script prints a
row per run and exits 1 if any run failed.

    .venv/bin/python scripts/train_stability.py                       # 2,000 steps, seeds 0-4
    .venv/bin/python scripts/train_stability.py --configs lfq-14bit --seeds 0 1 --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "scripts" / "sample_data" / "audio"


def prepared_config(name: str, work: Path) -> Path:
    config = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    if config.get("frontend", {}).get("kind", "none") == "none":
        logmel = yaml.safe_load((ROOT / "configs" / "logmel-bsq-16bit.yaml").read_text())
        config["frontend"] = logmel["frontend"]
        config.pop("features", None)
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, seed: int, steps: int, work: Path, threads: int) -> dict:
    out = work / f"{config.stem}-seed{seed}.safetensors"
    cmd = [sys.executable, "-m", "tokquant", "train", "--config", str(config), "--data",
           str(AUDIO), "--out", str(out), "--steps", str(steps), "--seed", str(seed),
           "--overwrite", "--json"]  # fmt: skip
    started = time.perf_counter()
    # Runs side by side share the cores: more threads than cores slowed each run ~2x.
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    row = {"config": config.stem, "seed": seed, "steps": steps, "rc": proc.returncode,
           "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    if proc.returncode == 0:
        summary = json.loads(proc.stdout)
        row.update({k: summary.get(k) for k in ("final_loss", "val_mse", "val_usage")})
    else:
        row["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"
    print(json.dumps(row), flush=True)  # as each run ends: a long sweep can be stopped early
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2, help="Runs at once.")
    parser.add_argument("--ssl", action="store_true", help="Also the SSL configs.")
    parser.add_argument("--json", type=Path, help="Write the rows here.")
    args = parser.parse_args()
    names = args.configs or sorted(
        p.stem for p in (ROOT / "configs").glob("*.yaml")
        if args.ssl or "ssl" not in p.read_text().split("kind:", 1)[-1][:20]
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        configs: dict[str, Path] = {}  # prepared text -> the first config that has it
        for name in names:
            path = prepared_config(name, work)
            first = configs.setdefault(path.read_text(), path)
            if first != path:  # e.g. rvq-8x1024 given the log-mel front end
                print(f"{name}: the same run as {first.stem} once given its front end")
        runs = [(path, s) for path in configs.values() for s in args.seeds]
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        with ThreadPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(lambda r: train(r[0], r[1], args.steps, work, threads), runs))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    failed = [r for r in rows if r["rc"] != 0]
    print(f"{len(rows) - len(failed)} of {len(rows)} runs finished without a non-finite value")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
