"""Pretrained vocoders on this machine: load time and decode speed (x real time) of
Vocos (``charactr/vocos-mel-24khz``, 13.5 M parameters) and BigVGAN v2
(``nvidia/bigvgan_v2_24khz_100band_256x``, 112 M) at their published sizes, through
tokquant's loader and chunked decoding.

Random weights of the published architectures stand in for the downloads (same code,
same cost; this machine cannot reach the Hub): saved to a temporary folder as the Hub
stores them, then loaded with :func:`tokquant.decoders.pretrained.networks.load_pretrained`.

    python scripts/bench_pretrained_vocoders.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_ray import cpu_model  # noqa: E402
from tests.test_pretrained_vocoders import BIGVGAN_24K, VOCOS_YAML  # noqa: E402
from tokquant.decoders.chunks import vocode  # noqa: E402
from tokquant.decoders.pretrained.networks import load_pretrained  # noqa: E402


def save_vocos(folder: Path) -> None:
    from vocos.pretrained import Vocos

    (folder / "config.yaml").write_text(VOCOS_YAML)
    torch.save(
        Vocos.from_hparams(str(folder / "config.yaml")).state_dict(), folder / "pytorch_model.bin"
    )


def save_bigvgan(folder: Path) -> None:
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    BigVGAN(AttrDict(BIGVGAN_24K | {"upsample_initial_channel": 1536}))._save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads; "
          f"{args.seconds:g} s of 24 kHz audio per decode")  # fmt: skip
    torch.manual_seed(0)
    for name, save in (("Vocos", save_vocos), ("BigVGAN v2", save_bigvgan)):
        with tempfile.TemporaryDirectory() as tmp:
            save(Path(tmp))
            start = time.perf_counter()
            net = load_pretrained(tmp)
            loaded = time.perf_counter() - start
            frames = int(args.seconds * net.config.sample_rate / net.config.hop)
            mels = torch.randn(frames, net.config.feature_dim) - 5.0
            vocode(net, mels[:50], 0)  # warm up
            start = time.perf_counter()
            vocode(net, mels, 0)
            took = time.perf_counter() - start
        params = sum(p.numel() for p in net.parameters()) / 1e6
        print(f"{name} ({params:.1f} M parameters): load {loaded:.1f} s, decode "
              f"{took:.2f} s ({args.seconds / took:.1f}x real time)")  # fmt: skip


if __name__ == "__main__":
    main()
