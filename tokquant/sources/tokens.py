"""Tokenized inputs as sources: a :class:`TokenSource` is one token file, or one utterance
of a corpus folder. ``decode`` and ``stats`` both walk a list of them, and both refuse
tokens another checkpoint made, failing that input alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.errors import InputError
from tokquant.formats.corpus import Corpus, is_corpus
from tokquant.formats.tokens import SUFFIX, read_tokens
from tokquant.sources.base import strip_suffix
from tokquant.sources.files import expand_inputs

if TYPE_CHECKING:
    import numpy as np

    from tokquant.sources.base import Source
    from tokquant.tokenizer.model import Tokenizer


def check_made_by(tok: Tokenizer, made_by: str, cardinalities: list[int], where: Path) -> None:
    """Tokens must come from this checkpoint, with its columns or (for quantizers with
    levels) its first columns."""
    if made_by != tok.checkpoint_id:
        name = tok.checkpoint_path.name if tok.checkpoint_path else "this tokenizer"
        raise InputError(
            f"{where}: made by checkpoint {made_by[:12] or '?'}, "
            f"not by {name} ({(tok.checkpoint_id or '?')[:12]})"
        )
    full = tok.column_cardinalities
    prefix = bool(cardinalities) and cardinalities == full[: len(cardinalities)]
    if cardinalities != full and not (tok.quantizer.supports_levels and prefix):
        raise InputError(f"{where}: its code columns do not match the checkpoint's")


def open_corpus_for(tok: Tokenizer, root: Path) -> Corpus:
    """Open a corpus folder and refuse it when another checkpoint made it."""
    corpus = Corpus(root)
    check_made_by(tok, corpus.checkpoint_id, corpus.cardinalities, root)
    return corpus


@dataclass(frozen=True)
class TokenSource:
    """One tokenized input: a token file (``path``), or utterance ``key`` of ``corpus``."""

    label: str
    #: Relative output key (``NAME.tokens.safetensors``): decoded outputs mirror it.
    key: Path
    path: Path | None = None
    corpus: Corpus | None = None
    channel: int | None = None

    @property
    def stem(self) -> str:
        """The key without its suffix: the key of the input it was encoded from."""
        return strip_suffix(self.key, (SUFFIX,)).as_posix()

    @property
    def name(self) -> str:
        """The bare name that pairs it with its encoded input (``stats --features``)."""
        return strip_suffix(self.key, (SUFFIX,)).name

    def load(self, tok: Tokenizer) -> tuple[np.ndarray, int | None]:
        """``(codes [T, G], channel)``; refuses tokens of another checkpoint."""
        if self.corpus is not None:
            return self.corpus[strip_suffix(self.key, (SUFFIX,)).as_posix()], self.channel
        assert self.path is not None
        tokens = read_tokens(self.path)
        check_made_by(tok, tokens.checkpoint_id, tokens.cardinalities, self.path)
        return tokens.codes, tokens.channel


def token_sources(tok: Tokenizer, specs: list[Path]) -> list[TokenSource]:
    """Token files (files, folders, lists) and the utterances of corpus folders."""
    files = [t for t in specs if not is_corpus(t)]
    out = [
        TokenSource(str(item.path), item.key, path=item.path)
        for item in (expand_inputs(files, (SUFFIX,), "token") if files else [])
    ]
    for root in (t for t in specs if is_corpus(t)):
        corpus = open_corpus_for(tok, root)
        out += [
            TokenSource(f"{root}:{u.key}", Path(u.key + SUFFIX), corpus=corpus, channel=u.channel)
            for u in corpus.utterances()
        ]
    return out


def pair_input(
    inputs: list[Source], source: TokenSource, channel: int | None, suffixes: tuple[str, ...]
) -> Source:
    """The input the tokens of ``source`` were encoded from: the one whose key is the
    tokens' whole key (a folder of audio and its folder of tokens, a manifest and its
    corpus), else the one file whose path ends in that key (``spk1/x`` pairs with
    ``wav/spk1/x.wav``, never ``wav/spk2/x.wav``). Anything else is refused, naming the
    key: a base name alone pairs nothing."""
    key = source.stem.removesuffix(f".ch{channel}") if channel is not None else source.stem
    parts = tuple(Path(key).parts)
    found = [item for item in inputs if item.stem(suffixes).as_posix() == key]
    if not found:
        found = [
            item
            for item in inputs
            if item.path is not None
            and tuple(strip_suffix(item.path, suffixes).parts[-len(parts) :]) == parts
        ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(f"{source.label}: no reference audio has its key ({key})")
    raise InputError(
        f"{source.label}: its key ({key}) names {len(found)} reference inputs "
        f"({found[0].origin}, {found[1].origin}); name the references by their whole key"
    )
