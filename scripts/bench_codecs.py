"""Codec tokenizers: ``tokquant encode`` against the per-file loop a user writes with
``transformers`` (processor + ``model.encode`` per file), same cores, same process.

Published architecture sizes (EnCodec 24 kHz, DAC 16 kHz, Mimi; DAC 24 and 44 kHz with
``--codecs``), random weights (speed does not depend on them; codebooks drawn so codes
vary), ``--utterances`` short utterances of 1-3 s. Prints utterances/s and x real time
of each, checks the codes are identical, and with ``--hour`` the peak memory of one hour
of audio through ``tokquant encode`` (windows of 30 s), in a process of its own so that
nothing before it sets the high-water mark.

    python scripts/bench_codecs.py [--utterances 200] [--device cpu] [--hour]
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
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import transformers  # noqa: E402

from tests.conftest import random_codebooks  # noqa: E402
from tokquant.devices import usable_cpus  # noqa: E402
from tokquant.formats.tokens import read_tokens  # noqa: E402
from tokquant.jobs import EncodeJob, ImportJob  # noqa: E402

CODECS = {
    "encodec-24khz": lambda: transformers.EncodecModel(transformers.EncodecConfig()),
    "dac-16khz": lambda: transformers.DacModel(transformers.DacConfig(sampling_rate=16000)),
    "mimi": lambda: transformers.MimiModel(transformers.MimiConfig()),
    "dac-24khz": lambda: transformers.DacModel(transformers.DacConfig(sampling_rate=24000)),
    "dac-44khz": lambda: transformers.DacModel(
        transformers.DacConfig(sampling_rate=44100, downsampling_ratios=[2, 4, 8, 8],
                               upsampling_ratios=[8, 8, 4, 2], n_codebooks=9)
    ),
}  # fmt: skip
DEFAULT_CODECS = ["encodec-24khz", "dac-16khz", "mimi"]


def loop_codes(kind: str, model, files: list[Path], device: str) -> dict[str, np.ndarray]:
    """The plain loop: read, processor, model.encode, one file at a time."""
    rate = model.config.sampling_rate
    if kind.startswith(("encodec", "mimi")):  # kyutai/mimi's processor is EnCodec's
        fe = transformers.EncodecFeatureExtractor(feature_size=1, sampling_rate=rate)
    else:
        fe = transformers.DacFeatureExtractor(
            sampling_rate=rate, hop_length=model.config.hop_length
        )
    out = {}
    with torch.no_grad():
        for f in files:
            wave = sf.read(f, dtype="float32")[0]
            inp = fe(raw_audio=wave, sampling_rate=rate, return_tensors="pt")
            x = inp["input_values"].to(device)
            if kind.startswith("encodec"):
                bw = model.config.target_bandwidths[-1]
                codes = (
                    model.encode(x, inp["padding_mask"].to(device), bandwidth=bw)
                    .audio_codes[0, 0]
                    .T
                )
            elif kind == "mimi":
                codes = model.encode(x, inp["padding_mask"].to(device)).audio_codes[0].T
            else:
                codes = model.encode(x).audio_codes[0].T
            out[f.stem] = codes.cpu().numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hour", action="store_true", help="peak memory on a 1-hour file")
    parser.add_argument("--codecs", nargs="*", default=DEFAULT_CODECS, choices=list(CODECS))
    args = parser.parse_args()
    threads = usable_cpus()
    torch.set_num_threads(threads)
    print(f"{os.cpu_count()} cores ({threads} usable), torch {torch.__version__}, "
          f"transformers {transformers.__version__}, device {args.device}")  # fmt: skip
    rng = np.random.default_rng(0)
    for kind in args.codecs:
        torch.manual_seed(0)
        model = random_codebooks(CODECS[kind]().eval()).to(args.device)
        rate = model.config.sampling_rate
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model.save_pretrained(root / "codec")
            ImportJob("codec", root / "codec", root / "tok.safetensors").run()
            (root / "wav").mkdir()
            seconds = 0.0
            for i in range(args.utterances):
                n = int(rng.uniform(1.0, 3.0) * rate)
                seconds += n / rate
                sf.write(
                    root / "wav" / f"u{i:04d}.wav",
                    rng.standard_normal(n).astype(np.float32) * 0.1,
                    rate,
                )
            files = sorted((root / "wav").glob("*.wav"))
            start = time.perf_counter()
            want = loop_codes(kind, model, files, args.device)
            loop = time.perf_counter() - start
            start = time.perf_counter()
            EncodeJob(
                root / "tok.safetensors", [root / "wav"], root / "tok", device=args.device
            ).run()
            ours = time.perf_counter() - start
            same = all(np.array_equal(read_tokens(root / "tok" / f"{k}.tokens.safetensors").codes, v)
                       for k, v in want.items())  # fmt: skip
            print(
                f"{kind}: {len(files)} utterances, {seconds:.0f} s of audio; codes identical: {same}"
            )
            for name, t in (("transformers loop", loop), ("tokquant encode", ours)):
                print(
                    f"  {name:18s} {t:7.2f} s  {len(files) / t:6.1f} utt/s  {seconds / t:6.1f}x real time"
                )
            if args.hour:
                hour_peak(root, rate, args.device, rng)


def hour_peak(root: Path, rate: int, device: str, rng: np.random.Generator) -> None:
    """One hour of audio through ``tokquant encode`` in a child process: its time and
    the child's peak RSS (the parent's loop and models do not count)."""
    n = 3600 * rate
    sf.write(root / "hour.wav", (rng.standard_normal(n) * 0.1).astype(np.float32), rate)
    code = (
        "import resource, sys, time; from pathlib import Path; from tokquant.jobs import EncodeJob; "
        "r = Path(sys.argv[1]); t = time.perf_counter(); "
        "EncodeJob(r / 'tok.safetensors', [r / 'hour.wav'], r / 'hour', device=sys.argv[2]).run(); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(root), device], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout  # fmt: skip
    took, peak = float(out.split()[-2]), int(out.split()[-1])
    print(f"  one hour: {took:.0f} s ({3600 / took:.1f}x real time), child process peak RSS "
          f"{peak / 1024:.0f} MB (its start included: {time.perf_counter() - start:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
