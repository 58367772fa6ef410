"""Make the bundled sample corpus: speech from espeak-ng as 80-dim log-mel features.

    apt-get install espeak-ng      # Debian package
    python scripts/make_sample_features.py [--out scripts/sample_data/features]

Four voices read six sentences each; every utterance is synthesised at espeak's rate,
resampled to 16 kHz (torchaudio) and turned into a log-mel spectrogram (25 ms windows,
10 ms hop, 80 mels, log floor 1e-5), stored as ``[frames, 80]`` float16 ``.npy`` files
under ``<voice>/<utterance>.npy``. The output is deterministic for a given espeak-ng.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Speech tokens let language models listen and talk.",
    "Residual quantizers refine a vector one level at a time.",
    "A binary code splits the sphere into many small cells.",
    "Please encode the whole corpus before the morning meeting.",
    "Seven silver spoons sat on the wooden table by the window.",
]
VOICES = {
    "en-us_m": "en-us",
    "en-gb_f": "en-gb+f3",
    "en-us_f": "en-us+f4",
    "en-sc_m": "en-gb-scotland+m3",
}
SAMPLE_RATE = 16_000


def synthesize(text: str, voice: str, speed: int) -> tuple[np.ndarray, int]:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, rate


def log_mel(audio: np.ndarray, rate: int) -> np.ndarray:
    wave = torch.from_numpy(audio).unsqueeze(0)
    wave = torchaudio.functional.resample(wave, rate, SAMPLE_RATE)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=400, win_length=400, hop_length=160, n_mels=80
    )(wave)
    return mel.clamp(min=1e-5).log()[0].T.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "sample_data" / "features"
    )
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found: apt-get install espeak-ng")
    total = 0
    for v, (name, voice) in enumerate(VOICES.items()):
        for i, text in enumerate(SENTENCES):
            audio, rate = synthesize(text, voice, speed=150 + 10 * ((i + v) % 3))
            feats = log_mel(audio, rate).astype(np.float16)
            path = args.out / name / f"utt{i:02d}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, feats)
            total += feats.shape[0]
    print(f"wrote {len(VOICES) * len(SENTENCES)} files, {total} frames, to {args.out}")


if __name__ == "__main__":
    main()
