"""Token quality per bit: every family at 16 and 64 bits against the peers, on a held-out voice.

    .venv/bin/python scripts/quality.py [--steps 300] [--batch 4096] [--json quality.json]
    .venv/bin/python scripts/quality.py --only 64     # the RVQ rows only
    .venv/bin/python scripts/quality.py --only 64 --held-out gb_f --match greedy

Features: 80-dim log-mels of the bundled corpus (scripts/sample_data/audio), normalised
with the training frames' mean and std. Training frames: the voices gb_f, gb_m, sc_m,
us_f (24 utterances); held out: every frame of the voice us_m (6 utterances; another
with ``--held-out``), which no quantizer sees before the report. Reported on the
held-out frames: SNR (dB) of the reconstruction and codebook usage per column (distinct
codes seen, over the number of codes or of held-out frames, whichever is smaller), and
its mean. The JSON also has the usage per column on all training frames and on each
training voice's frames alone: one voice, seen or not, uses about as much of a column as
the held-out voice does, which tells a column that is voice-specific from one that does
not generalise.

64 bits (8 levels x 256 codes, straight on the features):
- tokquant RVQ: k-means init (8,192 frames), EMA 0.99, dead codes (20% of uniform, 10
  steps); greedy, and fitted for beam 5 (``beam=5``) and encoded with it, after the 300
  EMA steps and as the beam fit alone (no steps, as FAISS trains). "interpolate 0.5": the
  batches of ``train.interpolate: 0.5`` (half the frames moved a random way towards the
  next frame of their utterance), as the shipped RVQ configs train.
- vector-quantize-pytorch ResidualVQ: k-means init, threshold_ema_dead_code=2; EMA decay
  0.8 (its default), 0.95 and 0.99, and 0.95 on the interpolated batches.
- FAISS ResidualQuantizer (faiss-cpu, bench-only): trained and encoded greedy, and with
  beam 5 (its default), on all training frames.

16 bits (an MLP projection 80 -> 256 -> d and back, AdamW 1e-3, the same batches; and
wider MLPs at lr 3e-3): tokquant BSQ-16, LFQ-16, FSQ [8, 8, 8, 5, 5, 5] (15.97 bits),
vector-quantize-pytorch FSQ with the same levels and projection, its LFQ and spherical LFQ
as two codebooks of 8 bits (its entropy terms then factorise into groups of 8 bits as
tokquant's do; one 2^16 codebook builds a 4096 x 65,536 softmax per step, about 7 GiB and
15 s a step on 2 cores), the shipped 16-bit configs' settings, and tokquant RVQ 2 x 256
(no projection) as the reference.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from tokquant import BSQ, FSQ, LFQ, RVQ, Quantizer
from tokquant.audio.frontend import FrontEnd, audio_features
from tokquant.tokenizer import _projection
from tokquant.tokenizer.config import FrontendConfig
from tokquant.tokenizer.training import TrainingSplit, draw_batch, next_frame_index

SAMPLES = Path(__file__).parent / "sample_data" / "audio"
HELD_OUT_VOICE = "us_m"


class Frames(NamedTuple):
    """The bundled corpus split for a report, normalised with the training statistics."""

    train: torch.Tensor
    held: torch.Tensor
    lengths: list[int]  # frames per training utterance, in the order of ``train``
    voices: list[str]  # the voice of each training utterance


def features(held_out: str = HELD_OUT_VOICE) -> Frames:
    fe = FrontEnd(FrontendConfig(kind="logmel"))
    parts: dict[bool, list[np.ndarray]] = {True: [], False: []}
    voices = []
    for path in sorted(SAMPLES.rglob("*.flac")):
        parts[path.parent.name == held_out].append(audio_features(path, fe))
        if path.parent.name != held_out:
            voices.append(path.parent.name)
    train, held = np.concatenate(parts[False]), np.concatenate(parts[True])
    mean, std = train.mean(0), train.std(0)
    as_tensor = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32))  # noqa: E731
    return Frames(as_tensor(train), as_tensor(held), [len(u) for u in parts[False]], voices)


def by_voice(frames: Frames, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ``rows`` (one per training frame: the frames, or their codes) of each training
    voice alone."""
    pieces = torch.split(rows, frames.lengths)
    return {v: torch.cat([p for p, w in zip(pieces, frames.voices, strict=True) if w == v])
            for v in dict.fromkeys(frames.voices)}  # fmt: skip


def snr(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return 10 * math.log10(float((x**2).sum() / ((x - x_hat) ** 2).sum()))


def usage_per_column(codes: torch.Tensor, cards: list[int]) -> list[float]:
    return [torch.unique(codes[:, g]).numel() / min(k, codes.shape[0])
            for g, k in enumerate(cards)]  # fmt: skip


def batches(
    train: torch.Tensor, steps: int, size: int, interpolate: float = 0.0,
    lengths: list[int] | None = None,
) -> Iterator[torch.Tensor]:  # fmt: skip
    """The same batches for every row. With ``interpolate`` (and the utterances'
    ``lengths``), what ``tokquant train`` draws under ``train.interpolate``
    (:func:`tokquant.tokenizer.training.draw_batch`)."""
    following = next_frame_index(lengths or [len(train)], len(train))
    split = TrainingSplit(train, train[:0], following)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        yield draw_batch(split, size, interpolate, g)


# ---------------------------------------------------------------------------- 64 bits


def tokquant_rvq(
    train, init, args, levels: int, beam: int, steps: int | None = None, iters: int = 10,
    interpolate: float = 0.0,
) -> Callable:  # fmt: skip
    torch.manual_seed(args.seed)
    q = RVQ(levels, 256, train.shape[1], ema_decay=0.99, dead_code_threshold=0.2,
            dead_code_window=10, beam=beam)  # fmt: skip
    q.init_from_data(init, iters=iters, generator=torch.Generator().manual_seed(args.seed))
    q.train()
    steps = args.steps if steps is None else steps
    for x in batches(train, steps, args.batch, interpolate, args.lengths):
        q(x)
    q.eval()

    def run(v):
        codes = q.encode(v, beam=beam)
        return q.decode(codes), codes, [256] * levels

    return run


def vqp_rvq(train, init, args, decay: float, interpolate: float = 0.0) -> Callable:
    from vector_quantize_pytorch import ResidualVQ

    torch.manual_seed(args.seed)
    q = ResidualVQ(dim=train.shape[1], num_quantizers=8, codebook_size=256, kmeans_init=True,
                   kmeans_iters=10, threshold_ema_dead_code=2, decay=decay)  # fmt: skip
    q.train()
    with torch.no_grad():
        q(init.unsqueeze(0))
        for x in batches(train, args.steps, args.batch, interpolate, args.lengths):
            q(x.unsqueeze(0))
    q.eval()

    def run(v):
        with torch.no_grad():
            recon, codes, _ = q(v.unsqueeze(0))
        return recon[0], codes[0], [256] * 8

    return run


def faiss_rq(train, init, args, beam: int) -> Callable:
    import faiss

    rq = faiss.ResidualQuantizer(train.shape[1], 8, 8)
    rq.max_beam_size = beam
    rq.verbose = False
    rq.train(train.numpy())

    def run(v):
        packed = rq.compute_codes(v.numpy())
        codes = torch.from_numpy(packed.astype(np.int64))  # 8 bits per level: one byte each
        return torch.from_numpy(rq.decode(packed)), codes, [256] * 8

    return run


# ---------------------------------------------------------------------------- 16 bits


class Projected(nn.Module):
    """features -> MLP -> quantizer -> MLP -> features, built as a tokquant tokenizer's."""

    def __init__(self, quantizer: nn.Module, dim: int, hidden: int = 256, depth: int = 1,
                 feature_dim: int = 80) -> None:  # fmt: skip
        super().__init__()
        self.project_in = _projection("mlp", feature_dim, dim, hidden, depth)
        self.quantizer = quantizer
        self.project_out = _projection("mlp", dim, feature_dim, hidden, depth)

    def forward(self, x):
        peer = not isinstance(self.quantizer, Quantizer)  # the peers want [batch, time, dim]
        z = self.project_in(x)
        out = self.quantizer(z.unsqueeze(0) if peer else z)
        quantized, codes = (out[0][0], out[1][0]) if peer else (out[0], out[1])
        aux = out[2] if len(out) > 2 and out[2] is not None else x.new_zeros(())
        return self.project_out(quantized), codes, aux


def projected(train, init, args, make: Callable[[], nn.Module], dim: int, cards, *,
              hidden: int = 256, depth: int = 1, lr: float = 1e-3) -> Callable:  # fmt: skip
    torch.manual_seed(0)
    model = Projected(make(), dim, hidden, depth)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    for x in batches(train, args.steps, args.batch):
        recon, _, aux = model(x)
        loss = ((recon - x) ** 2).mean() + aux.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()

    def run(v):
        with torch.no_grad():
            recon, codes, _ = model(v)
        return recon, codes.reshape(v.shape[0], -1).long(), cards

    return run


def rows_16(train, init, args) -> list[tuple[str, Callable]]:
    from vector_quantize_pytorch import FSQ as PeerFSQ
    from vector_quantize_pytorch import LFQ as PeerLFQ

    levels = [8, 8, 8, 5, 5, 5]
    wide = {"hidden": 512, "depth": 2, "lr": 3e-3}

    def tuned_bsq() -> nn.Module:
        return BSQ(16, entropy_loss_weight=0.02, sphere_commitment_weight=4.0)

    def tuned_lfq() -> nn.Module:
        return LFQ(16, entropy_loss_weight=0.02)

    def peer_lfq(spherical: bool) -> Callable[[], nn.Module]:
        # two codebooks of 8 bits: the entropy terms factorised as tokquant's groups of 8
        return lambda: PeerLFQ(dim=16, codebook_size=256, num_codebooks=2, spherical=spherical)

    return [
        ("16 | tokquant RVQ 2x256 (no projection)", lambda: tokquant_rvq(train, init, args, 2, 1)),
        ("16 | tokquant BSQ-16", lambda: projected(train, init, args, lambda: BSQ(16), 16, [2**16])),
        ("16 | tokquant LFQ-16", lambda: projected(train, init, args, lambda: LFQ(16), 16, [2**16])),
        ("16 | tokquant FSQ 8,8,8,5,5,5", lambda: projected(train, init, args, lambda: FSQ(levels),
                                                           6, [64000])),
        ("16 | vqp FSQ 8,8,8,5,5,5", lambda: projected(train, init, args, lambda: PeerFSQ(levels),
                                                      6, [64000])),
        # configs/logmel-fsq-16bit.yaml: a 2 x 512 MLP, lr 3e-3
        ("16 | tokquant FSQ, 2x512 MLP, lr 3e-3", lambda: projected(
            train, init, args, lambda: FSQ(levels), 6, [64000], hidden=512, depth=2, lr=3e-3)),
        ("16 | vqp FSQ, 2x512 MLP, lr 3e-3", lambda: projected(
            train, init, args, lambda: PeerFSQ(levels), 6, [64000], hidden=512, depth=2, lr=3e-3)),
        ("16 | tokquant BSQ-16, 2x512 MLP, lr 3e-3", lambda: projected(
            train, init, args, lambda: BSQ(16), 16, [2**16], hidden=512, depth=2, lr=3e-3)),
        ("16 | tokquant LFQ-16, 2x512 MLP, lr 3e-3", lambda: projected(
            train, init, args, lambda: LFQ(16), 16, [2**16], hidden=512, depth=2, lr=3e-3)),
        # the shipped configs' quantizer settings at the two projections above
        ("16 | tokquant BSQ-16, entropy 0.02, commit 4", lambda: projected(
            train, init, args, tuned_bsq, 16, [2**16])),
        ("16 | tokquant LFQ-16, entropy 0.02", lambda: projected(
            train, init, args, tuned_lfq, 16, [2**16])),
        ("16 | tokquant BSQ-16, 2x512 MLP, lr 3e-3, entropy 0.02, commit 4", lambda: projected(
            train, init, args, tuned_bsq, 16, [2**16], **wide)),
        # configs/logmel-lfq-16bit.yaml and configs/logmel-bsq-16bit.yaml
        ("16 | tokquant LFQ-16, 2x512 MLP, lr 3e-3, entropy 0.02", lambda: projected(
            train, init, args, tuned_lfq, 16, [2**16], **wide)),
        ("16 | tokquant BSQ-16, 2x1024 MLP, lr 3e-3, entropy 0.02, commit 4", lambda: projected(
            train, init, args, tuned_bsq, 16, [2**16], hidden=1024, depth=2, lr=3e-3)),
        ("16 | vqp LFQ 2x8 bits", lambda: projected(train, init, args, peer_lfq(False), 16,
                                                  [256, 256])),
        ("16 | vqp LFQ spherical 2x8 bits", lambda: projected(train, init, args, peer_lfq(True),
                                                            16, [256, 256])),
        ("16 | vqp LFQ 2x8 bits, 2x512 MLP, lr 3e-3", lambda: projected(
            train, init, args, peer_lfq(False), 16, [256, 256], **wide)),
        ("16 | vqp LFQ spherical 2x8 bits, 2x512 MLP, lr 3e-3", lambda: projected(
            train, init, args, peer_lfq(True), 16, [256, 256], **wide)),
    ]  # fmt: skip


def rows_64(train, init, args) -> list[tuple[str, Callable]]:
    return [
        ("64 | tokquant RVQ 8x256 greedy", lambda: tokquant_rvq(train, init, args, 8, 1)),
        (
            "64 | tokquant RVQ 8x256 greedy, interpolate 0.5",
            lambda: tokquant_rvq(train, init, args, 8, 1, interpolate=0.5),
        ),
        ("64 | tokquant RVQ 8x256 beam 5", lambda: tokquant_rvq(train, init, args, 8, 5)),
        (
            "64 | tokquant RVQ 8x256 beam 5, interpolate 0.5",
            lambda: tokquant_rvq(train, init, args, 8, 5, interpolate=0.5),
        ),
        (
            "64 | tokquant RVQ 8x256 beam 5, fit only",
            lambda: tokquant_rvq(train, init, args, 8, 5, steps=0),
        ),
        (
            "64 | tokquant RVQ 8x256 beam 5, fit only, 20 k-means iterations",
            lambda: tokquant_rvq(train, init, args, 8, 5, steps=0, iters=20),
        ),
        ("64 | vqp ResidualVQ decay 0.8", lambda: vqp_rvq(train, init, args, 0.8)),
        ("64 | vqp ResidualVQ decay 0.95", lambda: vqp_rvq(train, init, args, 0.95)),
        ("64 | vqp ResidualVQ decay 0.99", lambda: vqp_rvq(train, init, args, 0.99)),
        (
            "64 | vqp ResidualVQ decay 0.95, interpolate 0.5",
            lambda: vqp_rvq(train, init, args, 0.95, interpolate=0.5),
        ),
        ("64 | FAISS RQ greedy", lambda: faiss_rq(train, init, args, 1)),
        ("64 | FAISS RQ beam 5", lambda: faiss_rq(train, init, args, 5)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--only", choices=["16", "64"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--held-out", default=HELD_OUT_VOICE, help="the voice to test on")
    parser.add_argument("--match", default="", help="only the rows whose name has this")
    parser.add_argument("--seed", type=int, default=0, help="the 64-bit rows' seed")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    frames = features(args.held_out)
    train, held, args.lengths = frames.train, frames.held, frames.lengths
    init = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(2))[:8192]]
    print(f"{len(train)} training frames (4 voices), {len(held)} held-out frames "
          f"(voice {args.held_out}); {args.steps} steps of {args.batch}")  # fmt: skip
    cases = ([] if args.only == "64" else rows_16(train, init, args)) + \
        ([] if args.only == "16" else rows_64(train, init, args))  # fmt: skip
    cases = [(name, make) for name, make in cases if args.match in name]
    rows = []
    for name, make in cases:
        started = time.perf_counter()
        run = make()
        seconds = time.perf_counter() - started
        recon, codes, cards = run(held)
        per_column = usage_per_column(codes, cards)
        train_codes = run(train)[1]
        seen = usage_per_column(train_codes, cards)  # on the voices it was trained on
        alone = {v: usage_per_column(c, cards) for v, c in by_voice(frames, train_codes).items()}
        row = {"name": name, "snr_db": round(snr(held, recon), 2),
               "usage": round(float(np.mean(per_column)), 3),
               "usage_per_column": [round(u, 3) for u in per_column],
               "training_frames_usage_per_column": [round(u, 3) for u in seen],
               "training_voice_usage_per_column": {
                   v: [round(u, 3) for u in col] for v, col in alone.items()},
               "train_seconds": round(seconds, 1)}  # fmt: skip
        rows.append(row)
        lowest_alone = [min(col) for col in alone.values()]
        print(f"{name:<42} SNR {row['snr_db']:6.2f} dB  usage {row['usage']:.3f} "
              f"(lowest column {min(per_column):.3f}; on each training voice alone "
              f"{min(lowest_alone):.3f}-{max(lowest_alone):.3f})  ({seconds:.0f} s)",
              flush=True)  # fmt: skip
    if args.json:
        settings = vars(args) | {"json": None, "lengths": None}
        args.json.write_text(json.dumps({"settings": settings, "rows": rows},
                                        indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
