"""The Python API's speed and the encoder's memory (issue 24).

1. ``tokquant.load(ckpt).encode_audio`` on a batch of 64 short utterances (the bundled
   corpus cut to 0.5-3 s, mixed 16 / 44.1 kHz) as one list call vs a loop of single calls.
2. Peak RSS of ``tokquant encode`` on a one-hour 16 kHz file, per checkpoint (a subprocess
   each, ``ru_maxrss``): activation memory is bounded by the encode block, not by the
   65,536-frame batch, whatever the projection's width.

    .venv/bin/python scripts/bench_load.py runs/demo/logmel-bsq-16bit.safetensors \\
        runs/demo/logmel-rvq-8x1024.safetensors
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "scripts" / "sample_data" / "audio"


def utterances(n: int = 64) -> list[tuple[np.ndarray, int]]:
    files = sorted(SAMPLES.rglob("*.flac"))
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        wave, rate = sf.read(files[i % len(files)], dtype="float32")
        seconds = rng.uniform(0.5, 3.0)
        piece = wave[: int(seconds * rate)]
        if i % 2:  # every other one at 44.1 kHz, as a mixed corpus has
            t = np.arange(int(piece.size * 44100 / rate)) * rate / 44100
            piece, rate = np.interp(t, np.arange(piece.size), piece).astype(np.float32), 44100
        out.append((piece, rate))
    return out


def batch_vs_loop(ckpt: Path, repeats: int = 3) -> dict[str, float]:
    import torch

    import tokquant

    torch.set_num_threads(2)
    tok = tokquant.load(ckpt)
    data = utterances()
    waves, rates = [w for w, _ in data], [r for _, r in data]
    tok.encode_audio(waves[:2], rates[:2])  # warm up
    best = {"list": float("inf"), "loop": float("inf")}
    for _ in range(repeats):
        start = time.perf_counter()
        together = tok.encode_audio(waves, rates)
        best["list"] = min(best["list"], time.perf_counter() - start)
        start = time.perf_counter()
        alone = [tok.encode_audio(w, r) for w, r in zip(waves, rates, strict=True)]
        best["loop"] = min(best["loop"], time.perf_counter() - start)
        assert all(torch.equal(a, b) for a, b in zip(alone, together, strict=True))
    audio = sum(w.size / r for w, r in data)
    return {"utterances": len(data), "audio_s": round(audio, 1),
            "list_s": round(best["list"], 3), "loop_s": round(best["loop"], 3),
            "list_x_realtime": round(audio / best["list"]), "loop_x_realtime": round(audio / best["loop"])}  # fmt: skip


def hour_rss(ckpt: Path, wav: Path, out: Path) -> float:
    """Peak RSS (MiB) of ``tokquant encode`` of one file, in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-m", "tokquant", "encode", ckpt, wav, "--out", out, "-q",
                    "--overwrite"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    for ckpt in args.checkpoints:
        print(ckpt.name, "encode_audio:", batch_vs_loop(ckpt), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "hour.wav"
        rng = np.random.default_rng(0)
        seconds = int(3600 * args.hours)
        with sf.SoundFile(wav, "w", 16000, 1, "PCM_16") as fh:
            for _ in range(seconds // 60):  # a minute at a time: the script stays small too
                fh.write((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))
        for ckpt in args.checkpoints:  # each in a fresh process: ru_maxrss only grows
            rss = subprocess.run([sys.executable, __file__, "--rss-only", ckpt, wav, tmp],
                                 capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
            print(f"{ckpt.name}: peak RSS encoding {seconds} s of audio: {rss} MiB", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--rss-only":
        print(round(hour_rss(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]) / "o")))
    else:
        main()
