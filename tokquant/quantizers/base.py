"""What every tokquant quantizer promises: one output type, an encode/decode pair, and the
answers callers need instead of switching on a family's name (prefix columns, beam
search, data-dependent initialisation, how batch statistics are shared across ranks)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class QuantizerOutput:
    """Result of a quantizer's forward.

    Unpacks as ``quantized, indices, aux_loss = quantizer(x)`` (the SpeechBrain
    convention), so it drops into code written for those modules.

    Attributes:
        quantized: straight-through output, shape ``[..., dim]``, float32 (float64 for
            float64 input): equal to ``decode(encode(x))`` in value.
        indices: integer codes, shape ``[..., G]``, the same tensor ``encode`` returns.
        aux_loss: scalar loss to add to the training objective.
        metrics: detached diagnostics (floats as 0-d tensors, per-bit vectors), no sync.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    aux_loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    def __iter__(self) -> Iterator[torch.Tensor]:
        yield self.quantized
        yield self.indices
        yield self.aux_loss

    def __getitem__(self, index: int | slice) -> Any:
        """``out[0]`` is ``quantized``, as in code that indexes SpeechBrain's tuple."""
        return (self.quantized, self.indices, self.aux_loss)[index]

    def __len__(self) -> int:
        return 3


@dataclass(frozen=True)
class BatchOps:
    """How a data-parallel run shares batch statistics between its processes.

    ``sum_autograd`` sums over ranks inside autograd (the codebook entropy's batch mean);
    ``sum`` sums without it (EMA and usage counts); ``gather`` concatenates every rank's
    rows (dead-code replacements drawn from the global batch).
    """

    sum_autograd: Callable[[torch.Tensor], torch.Tensor]
    sum: Callable[[torch.Tensor], torch.Tensor]
    gather: Callable[[torch.Tensor], torch.Tensor]


class Quantizer(nn.Module):
    """Base class: maps ``[..., dim]`` vectors to ``[..., G]`` integer codes and back.

    ``G`` is the number of code columns: residual levels for RVQ, bit groups for BSQ/LFQ.
    ``column_cardinalities[g]`` is how many distinct values column ``g`` can take, which is
    what token files and usage statistics need to know.
    """

    #: The family's name, as configs and token files spell it.
    kind: ClassVar[str] = ""
    #: The code columns are successive refinements, so a prefix of them decodes
    #: (``encode(x, num_levels=n)``, ``decode`` of the first n columns).
    supports_levels: ClassVar[bool] = False
    #: The arguments it was built with (see :mod:`tokquant.quantizers.params`).
    params: Any

    def __init__(self) -> None:
        super().__init__()
        #: Set by data-parallel training; None when the process trains alone.
        self.batch_ops: BatchOps | None = None

    @classmethod
    def from_params(cls, params: Any) -> Quantizer:
        """Build from a family's params dataclass (fields = constructor arguments)."""
        return cls(**dataclasses.asdict(params))

    @property
    def supports_beam(self) -> bool:
        """Whether ``encode(x, beam=B)`` can search with a beam."""
        return False

    @property
    def init_frames(self) -> int:
        """Frames :meth:`init_from_data` wants before training (0: none needed)."""
        return 0

    def init_from_data(
        self, x: torch.Tensor, *, iters: int = 20, generator: torch.Generator | None = None
    ) -> None:
        """Fit data-dependent state (codebooks) before training; a no-op by default."""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def column_cardinalities(self) -> list[int]:
        raise NotImplementedError

    @property
    def column_names(self) -> list[str]:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain JSON values; ``type(q)(**q.config())`` rebuilds it.

        Arguments that do not change what codes mean are left out at their defaults."""
        return self.params.record()

    def describe(self) -> dict[str, Any]:
        """``config()`` and the family: what token files and corpora record."""
        return self.config() | {"family": self.kind}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    # Shared argument checks -------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor. Found: {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor. Found dtype: {x.dtype}")
        if x.dim() == 0 or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have last dimension {self.dim} ([..., {self.dim}]). "
                f"Found shape: {list(x.shape)}"
            )

    def _check_codes(self, codes: torch.Tensor, max_columns: int | None = None) -> None:
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"codes must be a torch.Tensor. Found: {type(codes).__name__}")
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise TypeError(f"codes must be an integer tensor. Found dtype: {codes.dtype}")
        g = len(self.column_cardinalities)
        n = codes.shape[-1] if codes.dim() else 0
        allowed = f"1..{g}" if max_columns is None else str(g)
        if codes.dim() == 0 or not (1 <= n <= g) or (max_columns is not None and n != g):
            raise ValueError(
                f"codes must have shape [..., {allowed}] (one column per "
                f"{'level' if self.supports_levels else 'bit group'}). Found: {list(codes.shape)}"
            )


def straight_through(value: torch.Tensor, grad_source: torch.Tensor) -> torch.Tensor:
    """Forward ``value`` exactly, backward the identity into ``grad_source``.

    Written as ``value + (g - sg(g))`` rather than ``g + sg(value - g)``: the latter rounds,
    so its forward would differ from ``decode(encode(x))`` in the last bit.
    """
    return value.detach() + (grad_source - grad_source.detach())


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Quantizer math runs in float32 (float64 when the caller asks for it), never half."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Disable autocast and TF32 so codes do not depend on the caller's precision settings.

    Codes must be identical whether the surrounding model runs in bf16, fp16 or fp32, and on
    CPU or CUDA; TF32 matmuls would change nearest-code decisions on Ampere and later.
    """
    prev_matmul = torch.backends.cuda.matmul.allow_tf32
    prev_cudnn = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev_matmul
        torch.backends.cudnn.allow_tf32 = prev_cudnn
