"""tokquant's Griffin-Lim vs torchaudio's plain inversion (``InverseMelScale`` by least
squares, then ``GriffinLim``, 32 iterations each), on the exact features of held-out
audio, for power mels (the demo's front end) and magnitude mels (``power: 1``).

    python scripts/griffin_lim_inversion.py [--files 10]

The held-out audio is made by ``make_sample_corpus.py --heldout``; scores are
``tokquant eval``'s, at 16 kHz.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_ray import cpu_model  # noqa: E402
from tokquant.audio._torchaudio import torchaudio  # noqa: E402
from tokquant.audio.frontend import FrontEnd  # noqa: E402
from tokquant.audio.metrics import score  # noqa: E402
from tokquant.decoders.mel import to_audio  # noqa: E402
from tokquant.tokenizer.config import FrontendConfig  # noqa: E402

KEYS = ("mel_distance", "stoi", "pesq_wb", "dnsmos_ovrl")


def plain_inversion(c: FrontendConfig, features: np.ndarray) -> np.ndarray:
    """torchaudio's own: InverseMelScale (``gelsd``: these filterbanks are rank-deficient,
    the default driver refuses them), then GriffinLim, shifted to frame 0's centre."""
    transforms = torchaudio()[1]
    inverse = transforms.InverseMelScale(
        n_stft=c.n_fft // 2 + 1, n_mels=c.n_mels, sample_rate=c.sample_rate, driver="gelsd"
    )
    gl = transforms.GriffinLim(
        n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length, power=c.power, n_iter=32
    )
    torch.manual_seed(0)
    wave = gl(inverse(torch.from_numpy(features).exp().T.contiguous()))
    return torch.cat([torch.zeros(c.first_centre), wave]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10, help="held-out files scored")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(ROOT / "scripts/make_sample_corpus.py"), "--heldout",
                        "--out", tmp], check=True, capture_output=True)  # fmt: skip
        files = sorted(Path(tmp).glob("*/*.flac"))[::3][: args.files]
        audio = [sf.read(f, dtype="float32") for f in files]
    print(f"{cpu_model()}, {os.cpu_count()} cores; {len(files)} held-out files; exact features\n")
    print("| mel | inversion | " + " | ".join(KEYS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in KEYS) + " |")
    for power in (2.0, 1.0):
        c = dataclasses.replace(FrontendConfig(kind="logmel"), power=power)
        front = FrontEnd(c)
        for name, invert in (("tokquant", lambda f, c=c: to_audio(c, f)), ("torchaudio", None)):
            rows = []
            for wave, rate in audio:
                features = front.features(torch.from_numpy(wave)).numpy()
                decoded = invert(features) if invert else plain_inversion(c, features)
                n = min(len(decoded), len(wave))
                rows.append(score(wave[:n], decoded[:n], rate))
            cells = [f"{np.mean([r[k] for r in rows]):.3f}" for k in KEYS]
            kind = "power" if power == 2.0 else "magnitude"
            print(f"| {kind} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
