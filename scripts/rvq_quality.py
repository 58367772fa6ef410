"""RVQ quality report: tokquant against vector-quantize-pytorch's ResidualVQ, and beam search.

    python scripts/rvq_quality.py [--levels 8] [--codes 256] [--steps 300] [--json out.json]

Features: 80-dim log-mels of the bundled speech corpus (scripts/sample_data/audio),
normalised per dimension, 10% of the frames held out. Every quantizer gets the same
k-means sample (8,192 frames), the same number of steps and the same batches. Reported on
the held-out frames: reconstruction SNR (dB) with greedy encoding, mean codebook usage
(fraction of codes used, per level), and for tokquant the MSE of beam widths 1, 2, 4, 8.

Rows:
- tokquant grad: k-means init, gradient codebook updates (AdamW on the codebook loss).
- tokquant EMA: k-means init, EMA updates (decay 0.99), dead-code replacement (a code
  below 20% of uniform usage over a 10-step window).
- vqp ResidualVQ: kmeans_init=True, threshold_ema_dead_code=2 (its recommended settings),
  EMA decay 0.8 (its default), 0.95 and 0.99.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from quality import batches, snr  # scripts/quality.py, beside this one

from tokquant import RVQ
from tokquant.audio.frontend import FrontEnd, audio_features
from tokquant.tokenizer.config import FrontendConfig

SAMPLES = Path(__file__).parent / "sample_data" / "audio"


def features() -> tuple[torch.Tensor, torch.Tensor]:
    fe = FrontEnd(FrontendConfig(kind="logmel"))
    x = np.concatenate([audio_features(p, fe) for p in sorted(SAMPLES.rglob("*.flac"))])
    x = (x - x.mean(0)) / x.std(0)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    data = torch.from_numpy(x.astype(np.float32))
    n_val = len(x) // 10
    return data[perm[n_val:]], data[perm[:n_val]]


def usage(codes: torch.Tensor, k: int) -> float:
    return float(np.mean([torch.unique(codes[:, lv]).numel() / k for lv in range(codes.shape[1])]))


def train_tokquant(train, init, args, *, ema: bool) -> RVQ:
    torch.manual_seed(0)
    kwargs = {"ema_decay": 0.99, "dead_code_threshold": 0.2, "dead_code_window": 10} if ema else {}
    q = RVQ(args.levels, args.codes, train.shape[1], **kwargs)
    q.init_from_data(init, iters=10, generator=torch.Generator().manual_seed(0))
    q.train()
    opt = None if ema else torch.optim.AdamW(q.parameters(), lr=1e-3, weight_decay=0.0)
    for x in batches(train, args.steps, args.batch):
        out = q(x)
        if opt is not None:
            opt.zero_grad()
            out.aux_loss.backward()
            opt.step()
    return q.eval()


def train_vqp(train, init, args, decay: float):
    from vector_quantize_pytorch import ResidualVQ

    torch.manual_seed(0)
    q = ResidualVQ(dim=train.shape[1], num_quantizers=args.levels, codebook_size=args.codes,
                   kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2, decay=decay)  # fmt: skip
    q.train()
    with torch.no_grad():
        q(init.unsqueeze(0))  # k-means on the same sample
        for x in batches(train, args.steps, args.batch):
            q(x.unsqueeze(0))
    return q.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--codes", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    train, val = features()
    init = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(2))[:8192]]
    print(f"{len(train)} train / {len(val)} held-out frames of dim {train.shape[1]}; "
          f"RVQ {args.levels}x{args.codes}, {args.steps} steps of {args.batch}")  # fmt: skip
    rows = []
    for name, make in [
        ("tokquant grad", lambda: train_tokquant(train, init, args, ema=False)),
        ("tokquant EMA + dead codes", lambda: train_tokquant(train, init, args, ema=True)),
        ("vqp ResidualVQ (decay 0.8)", lambda: train_vqp(train, init, args, 0.8)),
        ("vqp ResidualVQ (decay 0.95)", lambda: train_vqp(train, init, args, 0.95)),
        ("vqp ResidualVQ (decay 0.99)", lambda: train_vqp(train, init, args, 0.99)),
    ]:
        t0 = time.perf_counter()
        q = make()
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            if isinstance(q, RVQ):
                codes = q.encode(val)
                recon = q.decode(codes)
            else:
                recon, codes, _ = q(val.unsqueeze(0))
                recon, codes = recon[0], codes[0]
        row = {"name": name, "snr_db": snr(val, recon), "usage": usage(codes, args.codes),
               "train_seconds": seconds}  # fmt: skip
        if isinstance(q, RVQ):
            mse = {
                b: float(((q.decode(q.encode(val, beam=b)) - val) ** 2).mean())
                for b in (1, 2, 4, 8)
            }
            row["beam_mse"] = mse
            row["beam4_mse_reduction"] = 1 - mse[4] / mse[1]
        rows.append(row)
        extra = ""
        if "beam_mse" in row:
            extra = "  beam MSE " + " ".join(f"{b}:{m:.4f}" for b, m in row["beam_mse"].items())
            extra += f"  (beam 4: -{100 * row['beam4_mse_reduction']:.1f}%)"
        print(f"{name:<28} SNR {row['snr_db']:6.2f} dB  usage {100 * row['usage']:5.1f}%  "
              f"train {seconds:5.1f} s{extra}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"settings": vars(args) | {"json": None}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
