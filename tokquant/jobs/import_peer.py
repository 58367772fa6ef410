"""The import job: a peer's RVQ (vector-quantize-pytorch, EnCodec, DAC) as a tokquant
checkpoint whose codes equal the peer's; returns the summary the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokquant.errors import OutputError
from tokquant.jobs.request import Request
from tokquant.storage.torch_load import load_state_dict


@dataclass
class ImportJob(Request):
    """A peer's RVQ (vector-quantize-pytorch ``vqp``, ``encodec``, ``dac``) as a tokquant
    checkpoint whose codes equal the peer's; ``codec``: a whole EnCodec, DAC or Mimi folder
    (``state_dict`` is the folder), its encoder the front end, its codes the codec's."""

    kind: str
    state_dict: str | Path
    out: str | Path
    frame_rate: float | None = None
    overwrite: bool = False
    #: ``kind="codec"``: the codec's first RVQ levels to keep (None: all)
    n_quantizers: int | None = None

    def run(self) -> dict[str, Any]:
        # start-up time: torch
        from tokquant.tokenizer.checkpoint import save_checkpoint
        from tokquant.tokenizer.importers import import_rvq, tokenizer_for, tokenizer_for_codec

        out, source = Path(self.out), Path(self.state_dict)
        if out.exists() and out.resolve() == source.resolve():
            raise OutputError(f"{out}: output path equals the input")
        if out.exists() and not self.overwrite:
            raise OutputError(f"{out}: exists; pass `overwrite=True` to replace it")
        if self.kind == "codec":
            tokenizer = tokenizer_for_codec(source, self.n_quantizers)
        else:
            tokenizer = tokenizer_for(
                import_rvq(self.kind, load_state_dict(source)), self.frame_rate
            )
        rvq = tokenizer.quantizer
        ckpt_id = save_checkpoint(
            tokenizer, out, {"imported_from": self.kind, "source": str(source)}
        )
        return {"checkpoint": str(out), "checkpoint_id": ckpt_id, **rvq.config()}
