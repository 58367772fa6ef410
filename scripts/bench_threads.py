"""What torch's thread count costs on a shared machine: vocoder training steps (the
shipped recipe's size) with 1 and 2 threads, alone and beside processes that keep CPUs
busy, as on a shared node. Prints a table and what ``usable_cpus()`` says here.

    python scripts/bench_threads.py [--steps 30] [--busy 1]

Each case runs in a fresh process (``--threads N`` as the CLI sets it), so one case's
thread pool never carries into the next.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

CASE = r"""
import json, sys, time
import numpy as np, torch
from tokquant.devices import use_threads
from tokquant.decoders.trained.losses import SpectralLoss
from tokquant.decoders.trained.network import Vocoder, VocoderConfig
threads, steps = int(sys.argv[1]), int(sys.argv[2])
use_threads(threads)
torch.manual_seed(0)
net = Vocoder(VocoderConfig(feature_dim=80, hop=160, sample_rate=16000))
loss_fn = SpectralLoss(16000)
opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
feats, audio = torch.randn(16, 32, 80), torch.randn(16, 32 * 160) * 0.1
for i in range(steps + 2):
    if i == 2:
        start = time.perf_counter()  # two warm-up steps
    loss = loss_fn(net(feats), audio)["loss"]
    opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"ms_per_step": 1000 * (time.perf_counter() - start) / steps,
                  "threads": torch.get_num_threads()}))
"""
SPIN = "while True: pass"


def run_case(threads: int, busy: int, steps: int) -> float:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)
        done = subprocess.run([sys.executable, "-c", CASE, str(threads), str(steps)],
                              check=True, capture_output=True, text=True)  # fmt: skip
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return json.loads(done.stdout)["ms_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--busy", type=int, default=1, help="competing busy processes")
    args = parser.parse_args()
    from tokquant.devices import usable_cpus

    print(f"machine: {platform.processor() or platform.machine()}, usable_cpus() = "
          f"{usable_cpus()}")  # fmt: skip
    print("| threads | busy processes beside it | ms per step |")
    print("| --- | --- | --- |")
    for busy in (0, args.busy):
        for threads in (1, 2):
            print(f"| {threads} | {busy} | {run_case(threads, busy, args.steps):.0f} |")


if __name__ == "__main__":
    main()
