"""The small jobs on files that exist: ``info`` (what a file is), ``verify`` (is a corpus
sound) and ``merge`` (join rank parts). Each returns the summary the CLI prints, as a
dict (also its ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokquant.errors import FormatError, InputError
from tokquant.jobs.request import Request
from tokquant.storage.regular import open_regular
from tokquant.storage.safe_json import loads as json_loads


@dataclass
class InfoJob(Request):
    """What a checkpoint, a vocoder, a token file or a corpus folder is: kind, ids,
    config, shapes."""

    path: str | Path

    def run(self) -> dict[str, Any]:
        # start-up time: numpy, torch
        from tokquant.formats import checkpoint as ckpt_format
        from tokquant.formats import corpus as corpus_format
        from tokquant.formats import tokens as tokens_format
        from tokquant.formats import vocoder as vocoder_format

        file = Path(self.path)
        if file.is_dir() and not corpus_format.is_corpus(file):
            unmerged = any(file.glob("manifest.rank*-of-*.json"))
            raise InputError(
                f"{file}: an unmerged corpus; run `tokquant merge {file}` first"
                if unmerged
                else f"{file}: is a folder; info describes a "
                f"checkpoint, a token file or a corpus folder"
            )
        if not file.is_dir() and not file.is_file():
            raise InputError(f"{file}: file not found")
        kind = "corpus" if file.is_dir() else _sniff(file)
        if kind == "corpus":
            return corpus_format.describe(file)
        if kind == tokens_format.FORMAT:
            tok = tokens_format.read_tokens(file)
            return {
                "kind": "tokens",
                "path": str(file),
                "format_version": tok.format_version,
                "tokquant_version": tok.tokquant_version,
                "checkpoint_id": tok.checkpoint_id,
                "source": tok.source,
                "channel": tok.channel,
                "num_frames": tok.num_frames,
                "frame_rate": tok.frame_rate,
                "columns": tok.columns,
                "quantizer": tok.quantizer,
            }
        if kind == ckpt_format.FORMAT or file.suffix == ".pt":
            meta = ckpt_format.read_checkpoint_metadata(file)
            return {
                "kind": "checkpoint",
                "path": str(file),
                "id": meta["id"],
                "config": meta["config"],
                "summary": {k: v for k, v in meta["summary"].items() if k != "history"},
                "tensors": meta["tensors"],
                "parameters": sum(_numel(s) for s in meta["tensors"].values()),
            }
        if kind == vocoder_format.FORMAT:
            from tokquant.decoders.trained.file import load_vocoder  # start-up time: torch

            loaded = load_vocoder(file)
            return {
                "kind": "vocoder",
                "path": str(file),
                "id": loaded.id,
                "checkpoint_id": loaded.checkpoint_id,
                "config": loaded.vocoder.config.to_dict(),
                "summary": loaded.summary,
                "parameters": sum(p.numel() for p in loaded.vocoder.parameters()),
            }
        raise FormatError(f"{file}: neither a tokquant checkpoint, vocoder nor token file")


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _sniff(path: Path) -> str | None:
    """The ``format`` metadata of a safetensors file, read from its JSON header only."""
    try:
        with open_regular(path) as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= 100 << 20:
                return None
            header = json_loads(fh.read(size), str(path))
        return header.get("__metadata__", {}).get("format")
    except (OSError, ValueError, AttributeError):  # InputError is a ValueError
        return None


@dataclass
class VerifyJob(Request):
    """Check a corpus against its manifest: checksums, counts, keys, offsets, codes."""

    corpus: str | Path

    def run(self) -> dict[str, Any]:
        """The summary; ``problems`` lists each one found (``ok`` when none)."""
        # start-up time: numpy
        from tokquant.formats.corpus import MANIFEST, Manifest, is_corpus, verify_corpus

        corpus = Path(self.corpus)
        if not is_corpus(corpus):
            raise InputError(f"{corpus}: not a corpus folder (no {MANIFEST})")
        problems = verify_corpus(corpus)
        manifest = Manifest.read(corpus / MANIFEST)
        return {
            "corpus": str(corpus),
            "shards": len(manifest.shards),
            "utterances": sum(len(s.entries) for s in manifest.shards),
            "frames": sum(e.frames for _, _, e in manifest.entries()),
            "checkpoint_id": manifest.checkpoint_id,
            "problems": problems,
            "ok": not problems,
        }


@dataclass
class MergeJob(Request):
    """Write ``corpus/manifest.json`` from its rank parts (every rank finished, one run)."""

    corpus: str | Path
    parts: list[str | Path] | None = None

    def run(self) -> dict[str, Any]:
        # start-up time: numpy
        from tokquant.formats.corpus import merge_parts

        parts = [Path(p) for p in self.parts] if self.parts else None
        merged = merge_parts(Path(self.corpus), parts)
        return {
            "corpus": str(self.corpus),
            "shards": len(merged.shards),
            "utterances": sum(s.utterances for s in merged.shards),
            "frames": sum(s.frames for s in merged.shards),
            "failures": len(merged.failures),
        }
