"""Train one decoder variant the recipe does not offer, for the README's list of what did
not move held-out PESQ-WB (issue 40): direct phase losses, another synthesis window, a
wider network, other speeds. Score the file it writes with ``tokquant eval``.

    python scripts/vocoder_ablations.py runs/demo/logmel-rvq-8x1024.safetensors \\
        --data scripts/sample_data/audio --data MORE_VOICES --steps 3000 \\
        [--phase-weight 1] [--n-fft 320] [--dim 384 --intermediate 1152] \\
        [--speeds 0.85 0.92 1 1.08 1.16 1.25 1.35] --out variant.vocoder.safetensors

It runs the ``train-vocoder`` job itself (inputs, speeds, state and file as the command
has them) with the variant patched into its network builder and loss, so without any
variant option it is ``tokquant train-vocoder`` (the control to compare with).
The phase losses are APNet's (Ai and Ling, 2023): anti-wrapped differences of the
predicted and the target phase, of their group delays (along frequency) and of their
instantaneous frequencies (along time), on the head's own frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokquant.decoders.trained import losses  # noqa: E402
from tokquant.decoders.trained import training as vocoder_training  # noqa: E402
from tokquant.decoders.trained.network import ISTFTHead  # noqa: E402
from tokquant.jobs import TrainVocoderJob  # noqa: E402
from tokquant.runners import train_vocoder as runner  # noqa: E402


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
    parser.add_argument("--dim", type=int, default=vocoder_training.VocoderTraining.dim)
    parser.add_argument(
        "--intermediate", type=int, default=vocoder_training.VocoderTraining.intermediate
    )
    parser.add_argument("--speeds", type=float, nargs="+")
    args = parser.parse_args()
    built: dict[str, Any] = {}

    def build(tok: Any, recipe: Any) -> Any:
        """The recipe's decoder at the asked width and window; its head's phases kept
        for the phase loss (a hook on its output layer: computed once)."""
        recipe = dataclasses.replace(recipe, dim=args.dim, intermediate=args.intermediate)
        config = vocoder_training.VocoderConfig
        if args.n_fft:
            vocoder_training.VocoderConfig = lambda **kw: config(**kw, n_fft=args.n_fft)
        try:
            vocoder = vocoder_training.build(tok, recipe)
        finally:
            vocoder_training.VocoderConfig = config
        head = built["head"] = vocoder.head

        def keep_phase(module: Any, inputs: Any, output: torch.Tensor) -> None:
            built["phase"] = output.transpose(1, 2).chunk(2, dim=1)[1]

        head.out.register_forward_hook(keep_phase)
        return vocoder

    spectral = losses.SpectralLoss.forward

    def with_phase(self: Any, decoded: torch.Tensor, target: torch.Tensor) -> dict:
        terms = spectral(self, decoded, target)
        target_phase = torch.angle(head_frames(built["head"], target))
        phase = phase_loss(built["phase"], target_phase)
        return {**terms, "loss": terms["loss"] + args.phase_weight * phase, "phase": phase}

    runner.build = build
    if args.phase_weight:
        losses.SpectralLoss.forward = with_phase
    speeds = {"speeds": args.speeds} if args.speeds else {}
    job = TrainVocoderJob(checkpoint=args.checkpoint, data=args.data, out=args.out,
                          steps=args.steps, overwrite=True, **speeds)  # fmt: skip
    summary = job.run().summary
    print(f"wrote {args.out}: {summary['steps']} steps, {summary['seconds']:.0f} s, "
          f"{summary['inputs']} inputs, final mel {summary['final_mel']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
