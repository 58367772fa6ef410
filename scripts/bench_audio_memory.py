"""Peak memory and speed of encoding one long audio file with the tokquant CLI.

    python scripts/bench_audio_memory.py [--minutes 60] [--rate 44100] [--workdir /tmp/tq-long]

Writes a synthetic speech-like file of the given length (in blocks, so the generator
itself stays small), builds a log-mel BSQ checkpoint, runs ``tokquant encode`` on it in a
subprocess and reports the child's peak resident memory (ru_maxrss) and wall time; then
checks the token count against the frame formula.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from tokquant.formats.tokens import read_tokens
from tokquant.tokenizer.checkpoint import save_checkpoint
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.model import Tokenizer


def write_long_file(path: Path, seconds: int, rate: int) -> int:
    rng = np.random.default_rng(0)
    total = seconds * rate
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as fh:
        for start in range(0, total, rate * 10):
            t = (start + np.arange(min(rate * 10, total - start))) / rate
            f0 = 120 + 60 * np.sin(2 * np.pi * 0.3 * t)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            x = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.15
            fh.write((x + 0.01 * rng.standard_normal(t.size)).astype(np.float32))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tq-long"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    audio = args.workdir / "long.wav"
    samples = write_long_file(audio, int(args.minutes * 60), args.rate)
    config = TokenizerConfig.from_dict(
        {"frontend": {"kind": "logmel"}, "quantizer": {"family": "bsq", "code_dim": 16}}
    )
    ckpt = args.workdir / "bsq.safetensors"
    save_checkpoint(Tokenizer(config), ckpt)
    tq = Path(sys.executable).with_name("tokquant")
    cmd = [str(tq), "encode", str(ckpt), str(audio), "--out", str(args.workdir / "tok"),
           "--overwrite", "--quiet"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    frames = read_tokens(args.workdir / "tok" / "long.tokens.safetensors").num_frames
    resampled = -(-samples * 16000 // args.rate)
    expected = 1 + (resampled - 400) // 160
    print(f"{args.minutes:g} min at {args.rate} Hz ({audio.stat().st_size / 2**20:.0f} MiB on disk): "
          f"encode {wall:.1f} s ({frames / wall:.0f} frames/s, {args.minutes * 60 / wall:.0f}x real "
          f"time), peak RSS {peak_mib:.0f} MiB, {frames} frames (formula {expected})")  # fmt: skip


if __name__ == "__main__":
    main()
