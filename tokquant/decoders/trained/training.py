"""Training a waveform decoder on what decode will give it.

The inputs are the tokenizer's decoded features, ``decode(encode(x))``, not its clean
features: the decoder learns to undo the quantisation error too, which costs more than
the phase that Griffin-Lim must guess (issue 30's measurements). Each input is encoded
and decoded once, up front; training then draws random segments of ``segment_frames``
frames and the audio under them. Frame ``t`` covers samples ``[t * hop, t * hop + win)``
(tokquant's framing), so a segment's audio target starts at its first frame's centre,
``win / 2`` samples after ``t * hop``, and a decoded waveform gets ``win / 2`` samples of
silence in front: sample ``n`` of the decoded audio lines up with sample ``n`` of the
encoded audio.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tokquant import distributed
from tokquant.audio._torchaudio import torchaudio
from tokquant.checks import shown
from tokquant.decoders.chunks import frame_offset
from tokquant.decoders.trained.losses import (
    Discriminators,
    SpectralLoss,
    discriminator_loss,
    generator_loss,
)
from tokquant.decoders.trained.network import LIMITS, Vocoder, VocoderConfig
from tokquant.decoders.trained.recipe import VocoderRecipe
from tokquant.errors import InputError, TrainingError

#: A callback ``(step, metrics)`` after every training step.
StepCallback = Callable[[int, dict[str, float]], None]


@dataclass
class VocoderTraining(VocoderRecipe):
    """The recipe (:class:`~tokquant.decoders.trained.recipe.VocoderRecipe`: steps,
    batch, segment frames, lr, seed, adversarial, speeds) and the network's size; the
    defaults are the shipped decoder (about 11 minutes on 2 CPU cores for the bundled
    corpus; ``scripts/vocoder_quality.py`` scores it)."""

    mel_weight: float = 1.0
    #: speed perturbation: each input is also trained on at these speeds (resampled, so
    #: pitch and formants move too), which widens 5 voices into many; 1.0 is the input.
    #: On unseen voices it raised PESQ-WB from 1.66 to 1.78 and DNSMOS OVRL from 2.16 to 2.26
    speeds: tuple[float, ...] = (0.85, 0.92, 1.0, 1.08, 1.16)
    dim: int = 256
    intermediate: int = 768
    layers: int = 6

    def check(self) -> None:
        for name, hi in TRAINING_LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
                raise InputError(
                    f"`{name}` must be an integer in [1, {hi:,}], found {shown(value)}"
                )
        if self.batch * self.segment_frames > MAX_BATCH_FRAMES:
            raise InputError(
                f"`batch` x `segment_frames` is {self.batch * self.segment_frames:,} frames a "
                f"step, over {MAX_BATCH_FRAMES:,}; lower one of them"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"`seed` must be an integer >= 0, found {shown(self.seed)}")
        if not isinstance(self.adversarial, bool):
            raise InputError(
                f"`adversarial` must be True or False, found {shown(self.adversarial)}"
            )
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise InputError(f"`lr` must be in (0, 1), found {shown(self.lr)}")
        if (
            not isinstance(self.speeds, (tuple, list))
            or not 1 <= len(self.speeds) <= 16
            or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and 0.5 <= s <= 2.0
                for s in self.speeds
            )
        ):
            raise InputError(
                f"`speeds` must be 1 to 16 factors in [0.5, 2], found {shown(self.speeds)}"
            )


#: Bounds of the recipe's integers: far above any useful run, low enough that a typo
#: (``batch=100000000``) is refused before memory is allocated for it.
TRAINING_LIMITS = {
    "steps": 100_000_000,
    "batch": 4096,
    "segment_frames": 100_000,
    "dim": LIMITS["dim"][1],
    "intermediate": LIMITS["intermediate"][1],
    "layers": LIMITS["layers"][1],
}
#: Frames one step may hold (``batch * segment_frames``): 16 x 32 is the recipe.
MAX_BATCH_FRAMES = 1_000_000


@dataclass
class Pair:
    """One input: its decoded features ``[T, F]`` and its audio from the first frame's
    centre, ``[T * hop]`` samples (zero-padded at the end)."""

    features: np.ndarray
    audio: np.ndarray


def make_pair(tok: Any, wave: np.ndarray) -> Pair | None:
    """``wave`` (mono, at the tokenizer's rate) as a training pair; None when shorter
    than one frame."""
    front = tok.config.frontend
    frames = front.num_frames(len(wave))
    if frames == 0:
        return None
    codes = tok.encode_audio(wave, front.sample_rate)
    features = tok.decode(codes).float().cpu().numpy()
    start, size = frame_offset(tok), frames * front.hop_length
    audio = np.zeros(size, dtype=np.float32)
    piece = wave[start : start + size]
    audio[: len(piece)] = piece
    return Pair(features.astype(np.float32), audio)


def perturbed(wave: np.ndarray, rate: int, speed: float) -> np.ndarray:
    """``wave`` played ``speed`` times as fast (its pitch and formants moved as much):
    the samples read as if recorded at ``rate * speed``, resampled to ``rate``."""
    if speed == 1.0:
        return wave

    source = round(rate * speed)
    return torchaudio()[0].resample(torch.from_numpy(wave), source, rate).numpy()


def build(tok: Any, training: VocoderTraining) -> Vocoder:
    """A decoder for ``tok``'s features, normalised by the tokenizer's own statistics."""
    front = tok.config.frontend
    config = VocoderConfig(
        feature_dim=int(tok.mean.numel()),
        hop=front.hop_length,
        sample_rate=front.sample_rate,
        dim=training.dim,
        intermediate=training.intermediate,
        layers=training.layers,
    )
    with torch.random.fork_rng():  # the initial weights follow the seed, not the caller's state
        torch.manual_seed(training.seed)
        vocoder = Vocoder(config)
    vocoder.mean.copy_(tok.mean.detach().cpu().reshape(-1))
    vocoder.std.copy_(tok.std.detach().cpu().reshape(-1).clamp(min=1e-5))
    return vocoder


def train_vocoder(
    vocoder: Vocoder,
    pairs: Sequence[Pair],
    training: VocoderTraining,
    *,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world: int = 1,
    start_step: int = 0,
    state: dict[str, Any] | None = None,
    on_step: StepCallback | None = None,
    optimizer_box: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``vocoder`` in place from ``start_step`` to ``training.steps``; returns the
    summary and the optimiser state (for a resume). Under torchrun each rank draws its
    own segments and the gradients are averaged."""
    training.check()
    usable = [p for p in pairs if p.features.shape[0] >= training.segment_frames]
    if not usable:
        raise InputError(
            f"no input is as long as a training segment "
            f"({training.segment_frames} frames): lower `segment_frames`"
        )
    device = torch.device(device)
    vocoder.to(device).train()
    loss_fn = SpectralLoss(vocoder.config.sample_rate, mel_weight=training.mel_weight).to(device)
    opt = torch.optim.AdamW(vocoder.parameters(), lr=training.lr, betas=(0.8, 0.99))
    adversary = (
        _Adversary(loss_fn.resolutions, training.lr, device, world)
        if training.adversarial
        else None
    )
    if state:
        _restore(opt, adversary, state)
    if optimizer_box is not None:  # where a caller saving the state mid-run finds them
        optimizer_box["optimizer"] = opt
        optimizer_box["adversary"] = adversary
    gen = np.random.default_rng(training.seed + 1000 * rank)
    weights = np.array([p.features.shape[0] for p in usable], dtype=np.float64)
    for _ in range(start_step):  # the same draws as an uninterrupted run
        _draw(usable, training, vocoder.config.hop, gen, weights)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for step in range(start_step, training.steps):
        for group in opt.param_groups:
            group["lr"] = _cosine(training.lr, step, training.steps)
        feats, audio = _draw(usable, training, vocoder.config.hop, gen, weights)
        feats, audio = feats.to(device), audio.to(device)
        decoded = vocoder(feats)
        metrics = loss_fn(decoded, audio)
        loss = metrics["loss"]
        if adversary is not None:
            loss, metrics = adversary.step(audio, decoded, metrics)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"vocoder loss became {float(loss)} at step {step}; try a lower `lr`"
            )
        opt.zero_grad()
        loss.backward()
        if world > 1:
            distributed.average_gradients(vocoder, world)
        torch.nn.utils.clip_grad_norm_(vocoder.parameters(), 10.0)
        opt.step()
        shown = {k: float(v.detach()) for k, v in metrics.items()}
        history.append(shown)
        if on_step is not None:
            on_step(step + 1, shown)
    vocoder.eval()
    last = history[-50:]
    summary = {
        "steps": training.steps,
        "seconds": round(time.perf_counter() - started, 2),
        **{f"final_{k}": float(np.mean([h[k] for h in last])) for k in (last[0] if last else {})},
    }
    return {"summary": summary, "optimizer": opt.state_dict()}


class _Adversary:
    """The discriminators and their optimiser: each step trains them on real vs decoded
    audio, then gives the decoder's loss (HiFi-GAN's weights: mel x 45, feature
    matching x 2, plus the STFT terms)."""

    def __init__(
        self, resolutions: list[tuple[int, int]], lr: float, device: torch.device, world: int
    ) -> None:
        self.discs = Discriminators(resolutions).to(device)
        self.opt = torch.optim.AdamW(self.discs.parameters(), lr=lr, betas=(0.8, 0.99))
        self.world = world

    def step(
        self, audio: torch.Tensor, decoded: torch.Tensor, metrics: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        d_loss = discriminator_loss(self.discs(audio), self.discs(decoded.detach()))
        self.opt.zero_grad()
        d_loss.backward()
        if self.world > 1:
            distributed.average_gradients(self.discs, self.world)
        self.opt.step()
        adversarial, matching = generator_loss(self.discs(audio), self.discs(decoded))
        loss = 45.0 * metrics["mel"] + metrics["stft"] + adversarial + 2.0 * matching
        return loss, {**metrics, "adv": adversarial, "fm": matching, "disc": d_loss}

    def state_dict(self) -> dict[str, Any]:
        return {"discs": self.discs.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discs.load_state_dict(state["discs"])
        self.opt.load_state_dict(state["opt"])


def _restore(opt: torch.optim.Optimizer, adversary: Any, state: dict[str, Any]) -> None:
    """The optimiser (and discriminators) of a saved state, or one line saying why not."""
    opt.load_state_dict(state["optimizer"])
    if adversary is not None and "adversary" in state:
        try:
            adversary.load_state_dict(state["adversary"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(
                f"cannot resume the discriminators from the saved state "
                f"({str(exc).splitlines()[0][:100]}); pass `overwrite=True` to start over"
            ) from None


def _cosine(lr: float, step: int, steps: int) -> float:
    """Linear warm-up over the first 2% of steps, then a cosine to a tenth of ``lr``."""
    warm = max(1, steps // 50)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * t)))


def _draw(
    pairs: Sequence[Pair],
    training: VocoderTraining,
    hop: int,
    gen: np.random.Generator,
    weights: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random segments, inputs drawn in proportion to their length."""
    if weights is None:
        weights = np.array([p.features.shape[0] for p in pairs], dtype=np.float64)
    picks = gen.choice(len(pairs), size=training.batch, p=weights / weights.sum())
    n = training.segment_frames
    feats, audio = [], []
    for i in picks:
        p = pairs[int(i)]
        t0 = int(gen.integers(0, p.features.shape[0] - n + 1))
        feats.append(p.features[t0 : t0 + n])
        audio.append(p.audio[t0 * hop : (t0 + n) * hop])
    return torch.from_numpy(np.stack(feats)), torch.from_numpy(np.stack(audio))
