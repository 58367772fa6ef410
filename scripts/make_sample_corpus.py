"""Make the bundled sample corpus: 30 short utterances, 5 espeak-ng voices, 16 kHz FLAC.

    apt-get install espeak-ng      # Debian package
    python scripts/make_sample_corpus.py [--out scripts/sample_data/audio]

Five voices read six sentences each at slightly varied speeds; espeak's 22.05 kHz output
is resampled to 16 kHz with torchaudio and stored as 16-bit FLAC under
``<voice>/uttNN.flac``. Deterministic for a given espeak-ng version.
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
    "us_m": "en-us",
    "us_f": "en-us+f4",
    "gb_f": "en-gb+f3",
    "gb_m": "en-gb+m2",
    "sc_m": "en-gb-scotland+m3",
}
SAMPLE_RATE = 16_000


def synthesize(text: str, voice: str, speed: int) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "sample_data" / "audio")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found: apt-get install espeak-ng")
    seconds = 0.0
    for v, (name, voice) in enumerate(VOICES.items()):
        for i, text in enumerate(SENTENCES):
            audio = synthesize(text, voice, speed=150 + 10 * ((i + v) % 3))
            path = args.out / name / f"utt{i:02d}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16")
            seconds += len(audio) / SAMPLE_RATE
    count = len(VOICES) * len(SENTENCES)
    print(f"wrote {count} utterances, {seconds:.1f} s of audio, to {args.out}")


if __name__ == "__main__":
    main()
