"""Odd sample rates (issue 29): encode ``--seconds`` of audio at common rates and at rates
that share almost no factor with the checkpoint's (16001, 32003, 999983 Hz), each in a
fresh ``tokquant encode`` process; print wall time and peak RSS (from ``wait4``).

torchaudio's own path built a kernel of 4.7 GB for 16001 Hz and asked for 64 GB for
999983 Hz; tokquant's direct path evaluates the same filter in blocks.

    .venv/bin/python scripts/bench_resample.py CHECKPOINT [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATES = (16000, 44100, 16001, 32003, 999983)


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.read().decode()[-500:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    import tokquant as tq
    from tokquant.audio.resample import Resampling

    target = tq.load(args.checkpoint).sample_rate
    tokquant = [sys.executable, "-m", "tokquant"]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"| rate (Hz) | path | encode {args.seconds:g} s: wall | peak RSS |")
        print("| --- | --- | --- | --- |")
        for rate in RATES:
            t = np.arange(int(rate * args.seconds)) / rate
            wave = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)
            path = Path(tmp) / f"r{rate}.wav"
            sf.write(path, wave.astype(np.float32), rate, subtype="FLOAT")
            wall, rss = run([*tokquant, "encode", str(args.checkpoint), str(path), "--out",
                             f"{tmp}/o{rate}", "-q"])  # fmt: skip
            r = Resampling.between(rate, target)
            how = "none" if rate == target else ("direct sinc" if r.direct else "torchaudio")
            print(f"| {rate} | {how} | {wall:.2f} s | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
