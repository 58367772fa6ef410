"""Train one decoder variant the recipe does not offer, for the README's list of what did
not move held-out PESQ-WB (issue 40): direct phase losses, another synthesis window, a
wider network, other speeds. Score the file it writes with ``tokquant eval``.

    python scripts/vocoder_ablations.py runs/demo/logmel-rvq-8x1024.safetensors \\
        --data scripts/sample_data/audio --data MORE_VOICES --steps 3000 \\
        [--phase-weight 1] [--n-fft 320] [--dim 384 --intermediate 1152] \\
        [--speeds 0.85 0.92 1 1.08 1.16 1.25 1.35] --out variant.vocoder.safetensors

Without any variant option it trains the shipped recipe (the control to compare with).
The phase losses are APNet's (Ai and Ling, 2023): anti-wrapped differences of the
predicted and the target phase, of their group delays (along frequency) and of their
instantaneous frequencies (along time), on the head's own frames.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tokquant  # noqa: E402
from tokquant.decoders.trained import training  # noqa: E402
from tokquant.decoders.trained.file import save_vocoder  # noqa: E402
from tokquant.decoders.trained.network import ISTFTHead  # noqa: E402


def anti_wrapped(x: torch.Tensor) -> torch.Tensor:
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def head_frames(head: ISTFTHead, wave: torch.Tensor) -> torch.Tensor:
    """The STFT in the head's framing (the adjoint of its inverse): ``[B, F, T]``."""
    pad = (head.n_fft - head.hop) // 2
    frames = torch.nn.functional.pad(wave, (pad, pad)).unfold(-1, head.n_fft, head.hop)
    return torch.fft.rfft(frames * head.window, dim=-1).transpose(1, 2)


def phase_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (
        anti_wrapped(predicted - target).mean()
        + anti_wrapped(torch.diff(predicted, dim=1) - torch.diff(target, dim=1)).mean()
        + anti_wrapped(torch.diff(predicted, dim=2) - torch.diff(target, dim=2)).mean()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--phase-weight", type=float, default=0.0)
    parser.add_argument("--n-fft", type=int)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--intermediate", type=int, default=768)
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.85, 0.92, 1.0, 1.08, 1.16])
    args = parser.parse_args()
    tok = tokquant.load(args.checkpoint)
    rate = tok.config.frontend.sample_rate
    recipe = training.VocoderTraining(
        steps=args.steps, speeds=tuple(args.speeds), dim=args.dim, intermediate=args.intermediate
    )
    pairs = []
    for folder in args.data:
        for path in sorted(folder.glob("*/*.flac")):
            wave, file_rate = sf.read(path, dtype="float32")
            if file_rate != rate:
                raise SystemExit(f"{path}: {file_rate} Hz, the tokenizer reads {rate} Hz")
            for speed in recipe.speeds:
                pair = training.make_pair(tok, training.perturbed(wave, rate, speed))
                if pair is not None:
                    pairs.append(pair)
    if args.n_fft:  # build() takes the window from VocoderConfig's default
        config = training.VocoderConfig
        training.VocoderConfig = lambda **kw: config(**kw, n_fft=args.n_fft)
    vocoder = training.build(tok, recipe)
    head = vocoder.head
    predicted: dict[str, torch.Tensor] = {}
    if args.phase_weight:
        inverse = ISTFTHead.forward

        def keep_phase(self: ISTFTHead, x: torch.Tensor) -> torch.Tensor:
            predicted["phase"] = self.out(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)[1]
            return inverse(self, x)

        spectral = training.SpectralLoss.forward

        def with_phase(self, decoded: torch.Tensor, target: torch.Tensor) -> dict:
            terms = spectral(self, decoded, target)
            phase = phase_loss(predicted["phase"], torch.angle(head_frames(head, target)))
            return {**terms, "loss": terms["loss"] + args.phase_weight * phase, "phase": phase}

        ISTFTHead.forward = keep_phase
        training.SpectralLoss.forward = with_phase
    started = time.perf_counter()

    def report(step: int, metrics: dict[str, float]) -> None:
        if step % 500 == 0:
            shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            print(f"{step}/{args.steps} {shown} {time.perf_counter() - started:.0f} s", flush=True)

    training.train_vocoder(vocoder, pairs, recipe, on_step=report)
    save_vocoder(vocoder, args.out, tok.checkpoint_id, {"steps": args.steps})
    print(f"wrote {args.out} ({len(pairs)} pairs, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
