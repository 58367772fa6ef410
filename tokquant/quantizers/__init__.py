"""The three quantizer families behind one interface (:class:`Quantizer`)."""

from tokquant.quantizers.base import Quantizer, QuantizerOutput
from tokquant.quantizers.binary import BSQ, LFQ
from tokquant.quantizers.rvq import RVQ

__all__ = ["BSQ", "LFQ", "RVQ", "Quantizer", "QuantizerOutput"]
