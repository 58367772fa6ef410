"""Where a trained vocoder loses PESQ-WB on held-out voices: its magnitude or its phase.

For each held-out voice it scores (PESQ-WB at 16 kHz, against the original audio):

- ``griffin-lim, exact``: Griffin-Lim on the audio's own log-mels (no tokens): what the
  features allow a plain inversion;
- ``vocoder``: the vocoder on the tokens' features (mel match as decode applies it);
- ``vocoder magnitude + original phase``: the vocoder's STFT magnitude with the original
  audio's phase: what its magnitude is worth if its phase were right;
- ``original magnitude + vocoder phase``: the other way round.

A voice whose third column is low has a magnitude problem (the network misjudges its
spectrum), one whose fourth is low a phase problem.

    python scripts/vocoder_diagnosis.py runs/demo/logmel-rvq-8x1024.safetensors \\
        runs/vocoders/logmel-rvq-8x1024.more.vocoder.safetensors [--heldout DIR]

The held-out audio is made by ``make_sample_corpus.py --heldout`` (here, when not given).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tokquant  # noqa: E402
from scripts.bench_ray import cpu_model  # noqa: E402
from tokquant.audio.metrics import at_16k  # noqa: E402
from tokquant.decoders import open_decoder  # noqa: E402
from tokquant.decoders.base import decode  # noqa: E402
from tokquant.decoders.mel import to_audio  # noqa: E402

#: The STFT the magnitude and phase are swapped in (40 ms windows, 10 ms hops at 16 kHz).
N_FFT, HOP = 640, 160
COLUMNS = ("griffin-lim, exact", "vocoder", "vocoder magnitude + original phase",
           "original magnitude + vocoder phase")  # fmt: skip


def swapped(magnitude_of: torch.Tensor, phase_of: torch.Tensor) -> np.ndarray:
    """The audio whose STFT has ``magnitude_of``'s magnitudes and ``phase_of``'s phases."""
    window = torch.hann_window(N_FFT)
    stft = dict(n_fft=N_FFT, hop_length=HOP, window=window)
    mag = torch.stft(magnitude_of, **stft, return_complex=True).abs()
    phase = torch.stft(phase_of, **stft, return_complex=True)
    phase = phase / phase.abs().clamp(min=1e-8)
    return torch.istft(mag * phase, **stft, length=len(magnitude_of)).numpy()


def main() -> None:
    from pesq import pesq

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("vocoder", type=Path)
    parser.add_argument("--heldout", type=Path, help="held-out audio (default: made here)")
    args = parser.parse_args()
    tok = tokquant.load(args.checkpoint)
    decoder = open_decoder(args.vocoder, tok)
    front = tok.config.frontend
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory() as tmp:
        heldout = args.heldout or Path(tmp) / "heldout"
        if args.heldout is None:
            subprocess.run([sys.executable, str(ROOT / "scripts/make_sample_corpus.py"),
                            "--heldout", "--out", str(heldout)], check=True)  # fmt: skip
        for path in sorted(heldout.glob("*/*.flac")):
            wave, rate = sf.read(path, dtype="float32")
            reference = at_16k(wave, rate)
            features = tok.audio_features(wave, rate)
            decoded = tok.decode(tok.encode_batch([features])[0]).float().numpy()
            vocoded = decode(decoder, tok, decoded)
            n = min(len(vocoded), len(reference))
            original, vocoded = torch.from_numpy(reference[:n]), vocoded[:n]
            outputs = (
                to_audio(front, features.float().cpu().numpy()),
                vocoded.numpy(),
                swapped(vocoded, original),
                swapped(original, vocoded),
            )
            for column, audio in zip(COLUMNS, outputs, strict=True):
                m = min(len(audio), n)
                value = pesq(16000, reference[:m], np.asarray(audio[:m], np.float32), "wb")
                scores[column][path.parent.name].append(value)
    voices = sorted(scores[COLUMNS[0]])
    print(f"{cpu_model()}, {os.cpu_count()} cores; PESQ-WB at 16 kHz, mean per voice\n")
    print("| voice | " + " | ".join(COLUMNS) + " |")
    print("| --- |" + " --- |" * len(COLUMNS))
    for voice in voices:
        cells = [f"{np.mean(scores[c][voice]):.2f}" for c in COLUMNS]
        print(f"| {voice} | " + " | ".join(cells) + " |")
    every = [f"{np.mean([x for v in scores[c].values() for x in v]):.3f}" for c in COLUMNS]
    print("| all | " + " | ".join(every) + " |")


if __name__ == "__main__":
    main()
