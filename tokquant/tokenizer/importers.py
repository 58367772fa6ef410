"""Bring RVQ checkpoints from other libraries into tokquant, with the same codes.

Each importer reads a plain state dict (tensors only) and returns an :class:`RVQ` whose
``encode`` gives the peer's own codes on the same inputs:

- ``vqp``: vector-quantize-pytorch ``ResidualVQ`` (Euclidean codebooks, ``codebook_dim``
  equal to ``dim``): ``layers.{l}._codebook.embed`` ``[1, K, D]``.
- ``encodec``: EnCodec's ``ResidualVectorQuantizer``: ``vq.layers.{l}._codebook.embed``
  ``[K, D]`` (its codebooks search by Euclidean distance, like ours).
- ``dac``: descript-audio-codec's ``ResidualVectorQuantize``: per level a weight-normed
  1x1 conv into a small codebook space (``in_proj``), a cosine lookup against
  ``codebook.weight`` ``[K, d]``, and a 1x1 conv back out (``out_proj``); weight norm is
  folded into plain weights (``g * v / ||v||``).
- ``mimi`` (inside a codec folder only): Mimi's split quantizer, a semantic RVQ and an
  acoustic RVQ, each searching its own linear projection of the same latents, their
  outputs projected back and summed. It is one tokquant RVQ on the two projections side
  by side (the tokenizer's linear ``project_in``/``project_out``) whose levels each read
  their own half: a level's ``codebook_dim`` maps select that half (a 0/1 matrix in,
  its transpose out, no bias: exact in floating point), so each level searches the
  vectors Mimi's searches, and its residual stays in its own half (:func:`from_mimi`).
- ``codec``: a whole EnCodec, DAC or Mimi folder (``transformers``' ``save_pretrained``): its
  encoder becomes the front end (:mod:`tokquant.audio.codec`) and its quantizer, read as
  ``encodec`` or ``dac`` above, the tokenizer's RVQ, so the tokenizer's codes are the
  codec's own (:func:`tokenizer_for_codec`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from tokquant.audio.codec import frontend_section, quantizer_state, read_codec
from tokquant.choices import PEER_KINDS
from tokquant.errors import FormatError
from tokquant.quantizers import RVQ
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.model import Tokenizer

KINDS = PEER_KINDS


def _levels(state: dict[str, torch.Tensor], pattern: str, what: str) -> list[int]:
    found = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})
    if not found or found != list(range(len(found))):
        shown = pattern.replace("\\", "").replace("(d+)", "{l}")
        raise FormatError(f"not a {what} state dict (no {shown} tensors)")
    return found


def _need(state: dict[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise FormatError(f"{what} state dict lacks {key}")
    return state[key].float()


def from_vqp(state: dict[str, torch.Tensor]) -> RVQ:
    levels = _levels(
        state, r"layers\.(\d+)\._codebook\.embed", "vector-quantize-pytorch ResidualVQ"
    )
    if any(k.startswith(("project_in.", "layers.0.project_in.")) for k in state):
        raise FormatError("ResidualVQ with codebook_dim != dim (projections) is not supported")
    books = []
    for lv in levels:
        embed = _need(state, f"layers.{lv}._codebook.embed", "ResidualVQ")
        if embed.dim() != 3 or embed.shape[0] != 1:
            raise FormatError(
                f"layers.{lv}._codebook.embed has shape {list(embed.shape)}; only heads=1 is supported"
            )
        books.append(embed[0])
    return _plain_rvq(books)


def from_encodec(state: dict[str, torch.Tensor]) -> RVQ:
    prefix = "vq." if any(k.startswith("vq.layers.") for k in state) else ""
    levels = _levels(
        state,
        rf"{re.escape(prefix)}layers\.(\d+)\._codebook\.embed",
        "EnCodec ResidualVectorQuantizer",
    )
    if any(".project_in." in k for k in state):
        raise FormatError("EnCodec quantizer with codebook_dim != dimension is not supported")
    return _plain_rvq(
        [_need(state, f"{prefix}layers.{lv}._codebook.embed", "EnCodec") for lv in levels]
    )


def _plain_rvq(books: list[torch.Tensor]) -> RVQ:
    dims = {b.shape[1] for b in books}
    if len(dims) != 1:
        raise FormatError(f"codebooks have different dims {sorted(dims)}")
    rvq = RVQ(len(books), [b.shape[0] for b in books], dims.pop())
    with torch.no_grad():
        for level, book in enumerate(books):
            rvq.levels[level].vectors.copy_(book)
    return rvq


def _weight(state: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """A conv weight, with weight norm (old or parametrization style) folded in."""
    if f"{prefix}.weight" in state:
        w = state[f"{prefix}.weight"].float()
    else:
        g_key, v_key = f"{prefix}.weight_g", f"{prefix}.weight_v"
        if g_key not in state:
            g_key = f"{prefix}.parametrizations.weight.original0"
            v_key = f"{prefix}.parametrizations.weight.original1"
        g, v = _need(state, g_key, "DAC"), _need(state, v_key, "DAC")
        norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
        w = g * v / norm
    if w.dim() == 3:
        if w.shape[2] != 1:
            raise FormatError(f"{prefix} is a conv with kernel {w.shape[2]}; DAC uses 1x1")
        w = w[:, :, 0]
    return w


def from_dac(state: dict[str, torch.Tensor]) -> RVQ:
    levels = _levels(
        state, r"quantizers\.(\d+)\.codebook\.weight", "descript-audio-codec ResidualVectorQuantize"
    )
    books = [_need(state, f"quantizers.{lv}.codebook.weight", "DAC") for lv in levels]
    w_in = [_weight(state, f"quantizers.{lv}.in_proj") for lv in levels]
    dim = w_in[0].shape[1]
    codebook_dim = books[0].shape[1]
    rvq = RVQ(
        len(levels), [b.shape[0] for b in books], dim, codebook_dim=codebook_dim, normalized=True
    )
    with torch.no_grad():
        for lv in levels:
            book = rvq.levels[lv]
            book.vectors.copy_(books[lv])
            book.project_in.weight.copy_(w_in[lv])
            book.project_in.bias.copy_(_need(state, f"quantizers.{lv}.in_proj.bias", "DAC"))
            book.project_out.weight.copy_(_weight(state, f"quantizers.{lv}.out_proj"))
            book.project_out.bias.copy_(_need(state, f"quantizers.{lv}.out_proj.bias", "DAC"))
    return rvq


@dataclass
class SplitRVQ:
    """Mimi's quantizer as one RVQ between two linear maps (see the module docstring)."""

    rvq: RVQ
    project_in: torch.Tensor  # [2 * d, D]
    project_out: torch.Tensor  # [D, 2 * d]


def from_mimi(state: dict[str, torch.Tensor]) -> SplitRVQ:
    halves = []
    for half in ("semantic", "acoustic"):
        prefix = f"{half}_residual_vector_quantizer."
        pattern = rf"{re.escape(prefix)}layers\.(\d+)\.codebook\.embed_sum"
        levels = _levels(state, pattern, "Mimi split quantizer")
        books = []
        for lv in levels:
            book = f"{prefix}layers.{lv}.codebook."
            usage = _need(state, book + "cluster_usage", "Mimi")
            books.append(_need(state, book + "embed_sum", "Mimi") / usage.clamp(min=1e-5)[:, None])
        width = books[0].shape[1]
        w_in = state.get(prefix + "input_proj.weight")
        w_out = state.get(prefix + "output_proj.weight")
        halves.append((books, width, w_in, w_out))
    widths = {h[1] for h in halves} | {b.shape[1] for h in halves for b in h[0]}
    if len(widths) != 1:
        raise FormatError(f"Mimi codebooks have different widths {sorted(widths)}")
    d = widths.pop()
    books = halves[0][0] + halves[1][0]
    maps_in, maps_out = [], []
    for _, _, w_in, w_out in halves:
        if (w_in is None) != (w_out is None):
            raise FormatError("Mimi quantizer has one projection of a pair")
        if w_in is None:  # codebooks as wide as the latents: no projection
            w_in = w_out = torch.eye(d)
        maps_in.append(w_in.float().reshape(w_in.shape[0], -1))
        maps_out.append(w_out.float().reshape(w_out.shape[0], -1))
    project_in, project_out = torch.cat(maps_in, 0), torch.cat(maps_out, 1)
    if project_in.shape[0] != 2 * d or project_out.shape[1] != 2 * d:
        raise FormatError(f"Mimi projections {list(project_in.shape)} do not fit codebooks of {d}")
    rvq = RVQ(len(books), [b.shape[0] for b in books], 2 * d, codebook_dim=d)
    semantic = len(halves[0][0])
    with torch.no_grad():
        for level, book in enumerate(books):
            select = torch.zeros(d, 2 * d)
            half = 0 if level < semantic else d
            select[:, half : half + d] = torch.eye(d)
            codebook = rvq.levels[level]
            codebook.vectors.copy_(book)
            codebook.project_in.weight.copy_(select)
            codebook.project_out.weight.copy_(select.T)
            codebook.project_in.bias.zero_()
            codebook.project_out.bias.zero_()
    return SplitRVQ(rvq, project_in, project_out)


def import_rvq(kind: str, state: dict[str, torch.Tensor]) -> RVQ:
    if kind == "codec":
        raise FormatError("a codec is a folder, not a state dict: see tokenizer_for_codec")
    try:
        importer = {"vqp": from_vqp, "encodec": from_encodec, "dac": from_dac}[kind]
    except KeyError:
        raise FormatError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}") from None
    try:
        return importer(state)
    except (RuntimeError, ValueError, IndexError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{kind} state dict does not fit: {exc}") from None


def tokenizer_for(rvq: RVQ, frame_rate: float | None = None):  # -> Tokenizer
    """A checkpointable tokenizer around an imported RVQ: features are the RVQ's input
    (no normalisation, no projection)."""
    config = TokenizerConfig.from_dict(
        {
            "quantizer": rvq.describe(),
            "projection": {"kind": "none"},
            "features": {"dim": rvq.embedding_dim, "frame_rate": frame_rate},
        }
    )
    tokenizer = Tokenizer(config)
    tokenizer.quantizer.load_state_dict(rvq.state_dict())
    return tokenizer.eval()


def tokenizer_for_codec(folder: str | Path, n_quantizers: int | None = None) -> Tokenizer:
    """A tokenizer whose codes are the codec's own: the codec's encoder as its front end,
    no normalisation or projection, and the codec's first ``n_quantizers`` RVQ levels
    (None: all of them; a residual quantizer's first levels do not depend on the rest)."""
    codec = read_codec(folder)
    split = from_mimi(quantizer_state(codec)) if codec.kind == "mimi" else None
    rvq = split.rvq if split else import_rvq(codec.kind, quantizer_state(codec))
    levels = len(rvq.levels)
    if n_quantizers is not None and not 1 <= n_quantizers <= levels:
        raise FormatError(
            f"`n_quantizers` must be in [1, {levels}] for {codec.path}, found {n_quantizers}"
        )
    if n_quantizers is not None and n_quantizers < levels:
        rvq = _first_levels(rvq, n_quantizers)
    reads = split.project_in.shape[1] if split else rvq.embedding_dim
    if reads != codec.latent_dim:
        raise FormatError(f"{codec.path}: quantizer reads {reads} dims, latents {codec.latent_dim}")
    config = TokenizerConfig.from_dict(
        {
            "frontend": frontend_section(codec),
            "quantizer": rvq.describe(),
            "projection": {"kind": "linear" if split else "none"},
            "features": {"dim": codec.latent_dim},
        }
    )
    tokenizer = Tokenizer(config)
    tokenizer.quantizer.load_state_dict(rvq.state_dict())
    if split:
        with torch.no_grad():
            for layer, weight in ((tokenizer.project_in, split.project_in),
                                  (tokenizer.project_out, split.project_out)):  # fmt: skip
                layer.weight.copy_(weight)
                layer.bias.zero_()
    return tokenizer.eval()


def _first_levels(rvq: RVQ, n: int) -> RVQ:
    """The first ``n`` levels of ``rvq`` as an RVQ of their own (the same tensors)."""
    described = {k: v for k, v in rvq.describe().items() if k != "family"}
    if isinstance(described["num_embeddings"], list):
        described["num_embeddings"] = described["num_embeddings"][:n]
    kept = RVQ(**{**described, "num_levels": n})
    kept.load_state_dict({k: v for k, v in rvq.state_dict().items()
                          if re.search(r"\.(\d+)(\.|$)", k) is None
                          or int(re.search(r"\.(\d+)(\.|$)", k).group(1)) < n})  # fmt: skip
    return kept
