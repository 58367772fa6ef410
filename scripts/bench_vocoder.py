"""Vocoder speed on this machine: decoding (x real time) through a trained vocoder, with
and without the mel match, vs Griffin-Lim (32 iterations), and one training step's time
and peak memory.

    python scripts/bench_vocoder.py CKPT VOCODER [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tokquant  # noqa: E402
from tokquant.decoders import decode, open_decoder  # noqa: E402
from tokquant.decoders.chunks import frame_offset, vocode  # noqa: E402
from tokquant.decoders.mel import to_audio  # noqa: E402
from tokquant.decoders.trained.file import load_vocoder  # noqa: E402
from tokquant.decoders.trained.losses import SpectralLoss  # noqa: E402
from tokquant.decoders.trained.training import VocoderTraining, _draw, make_pair  # noqa: E402


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("vocoder", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    tok = tokquant.load(args.checkpoint)
    rate = tok.config.frontend.sample_rate
    files = sorted((ROOT / "scripts/sample_data/audio").rglob("*.flac"))
    speech = np.concatenate([sf.read(f, dtype="float32")[0] for f in files])
    speech = np.tile(speech, int(np.ceil(args.seconds * rate / len(speech))))[
        : int(args.seconds * rate)
    ]
    features = tok.decode(tok.encode_audio(speech, rate)).float().numpy()
    decoder = open_decoder(load_vocoder(args.vocoder), tok)
    net = decoder.net
    offset = frame_offset(tok)
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.seconds:.0f} s of speech ({features.shape[0]} frames)")  # fmt: skip
    voc = best_of(lambda: vocode(net, features, offset))
    matched = best_of(lambda: decode(decoder, tok, features))
    gl = best_of(lambda: to_audio(tok.config.frontend, features), repeats=1)
    print(f"vocoder decode: {voc:.2f} s ({args.seconds / voc:.0f}x real time)")
    print(f"vocoder + mel match (the default): {matched:.2f} s "
          f"({args.seconds / matched:.0f}x real time)")  # fmt: skip
    print(f"Griffin-Lim decode: {gl:.2f} s ({args.seconds / gl:.1f}x real time)")
    training = VocoderTraining()
    pair = make_pair(tok, speech[: 20 * rate])
    loss_fn = SpectralLoss(rate)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    gen = np.random.default_rng(0)
    net.train()

    def step() -> None:
        feats, audio = _draw([pair], training, net.config.hop, gen)
        loss = loss_fn(net(feats), audio)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    seconds = best_of(step, repeats=10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"training step (batch {training.batch} x {training.segment_frames} frames): "
          f"{seconds * 1000:.0f} ms; peak RSS of this process {peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
