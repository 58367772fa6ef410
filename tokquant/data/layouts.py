"""How a corpus' code columns become the token sequences an LM trains on, and back.

Codes are ``[T, G]``: ``T`` frames, ``G`` columns (RVQ levels, or the columns of a wide
binary code), column ``g`` with cardinality ``K_g``. Four choices, applied in this order:

1. ``dedup``: each run of identical frames becomes one frame; ``durations[i]`` says how
   many frames frame ``i`` stood for (HuBERT units). ``T`` below is the count after it.
2. ``offsets``: column ``g``'s code ``c`` becomes ``c + O_g`` with ``O_g = K_0 + ... +
   K_{g-1}``, so all columns share one vocabulary of ``V = sum K_g`` ids. Without
   offsets every column keeps its own ids and ``V = max K_g``.
3. ``layout``:

   - ``parallel``: ``[T, G]`` as it is.
   - ``interleave``: ``[T * G]``, frame by frame: ``x[t * G + g] = c[t, g]``.
   - ``delay`` (MusicGen): ``[T + G - 1, G]``, column ``g`` shifted down by ``g`` rows:
     ``x[t + g, g] = c[t, g]``; every other cell is the pad id ``V``. An empty
     sequence stays empty.

The vocabulary size is ``V``, plus one for the pad id with ``delay``. Nothing here knows
of files: the export formats and :class:`tokquant.data.TokenDataset` share it, so a
Parquet row, a ``.km`` line and a Dataset item of the same utterance hold the same ids.
Everything works on many utterances at once (``offsets`` into concatenated frames),
vectorised, because an export handles a whole shard in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokquant.choices import TOKEN_LAYOUTS

#: Each layout and the shape of one utterance's tokens in it (after dedup, ``T`` frames).
LAYOUT_SHAPES = dict(zip(TOKEN_LAYOUTS, ("[T, G]", "[T * G]", "[T + G - 1, G]"), strict=True))
LAYOUTS: tuple[str, ...] = TOKEN_LAYOUTS


@dataclass
class TokenBatch:
    """Token sequences of many utterances, concatenated.

    ``rows`` ``[R, G]`` holds utterance ``u`` in ``rows[row_offsets[u]:row_offsets[u+1]]``;
    with ``flat`` (interleave) its sequence is that block flattened row by row.
    ``durations`` (with dedup) holds utterance ``u``'s in
    ``durations[duration_offsets[u]:duration_offsets[u+1]]``.
    """

    rows: np.ndarray
    row_offsets: np.ndarray
    flat: bool
    durations: np.ndarray | None = None
    duration_offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.row_offsets) - 1

    def tokens(self, u: int) -> np.ndarray:
        block = self.rows[self.row_offsets[u] : self.row_offsets[u + 1]]
        return block.reshape(-1) if self.flat else block

    def durations_of(self, u: int) -> np.ndarray | None:
        if self.durations is None or self.duration_offsets is None:
            return None
        return self.durations[self.duration_offsets[u] : self.duration_offsets[u + 1]]


@dataclass(frozen=True)
class TokenLayout:
    """One choice of layout, offsets and dedup for columns of these cardinalities.

    Example:
        >>> layout = TokenLayout((1024, 1024), layout="interleave", offsets=True)
        >>> layout.vocab_size
        2048
        >>> ids, _ = layout.encode(np.array([[3, 5], [7, 9]]))
        >>> ids.tolist()
        [3, 1029, 7, 1033]
        >>> layout.decode(ids).tolist()
        [[3, 5], [7, 9]]
    """

    cardinalities: tuple[int, ...]
    layout: str = "parallel"
    offsets: bool = False
    dedup: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "cardinalities", tuple(int(k) for k in self.cardinalities))
        if not self.cardinalities or min(self.cardinalities) < 1:
            raise ValueError(f"cardinalities must be positive. Found: {self.cardinalities}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}. Found: {self.layout!r}")
        if self.vocab_size > 2**63:
            raise ValueError(f"a vocabulary of {self.vocab_size} ids does not fit in 64 bits")

    @property
    def num_columns(self) -> int:
        return len(self.cardinalities)

    @property
    def column_offsets(self) -> np.ndarray:
        """``O_g``: what column ``g``'s codes are shifted by (zeros without offsets)."""
        if not self.offsets:
            return np.zeros(self.num_columns, np.int64)
        return np.concatenate([[0], np.cumsum(self.cardinalities[:-1])]).astype(np.int64)

    @property
    def pad_id(self) -> int | None:
        """The id of delay's padding cells (None for the other layouts)."""
        return self._code_vocab if self.layout == "delay" else None

    @property
    def _code_vocab(self) -> int:
        return sum(self.cardinalities) if self.offsets else max(self.cardinalities)

    @property
    def vocab_size(self) -> int:
        """Ids are in ``[0, vocab_size)``; with delay the last one is the pad id."""
        return self._code_vocab + (self.layout == "delay")

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned dtype of at least 16 bits that holds every id."""
        for dtype in (np.uint16, np.uint32, np.uint64):
            if self.vocab_size - 1 <= np.iinfo(dtype).max:
                return np.dtype(dtype)
        raise AssertionError("checked in __post_init__")

    # ------------------------------------------------------------------ forward

    def apply(self, codes: np.ndarray, frame_offsets: np.ndarray) -> TokenBatch:
        """Codes of many utterances (``codes`` ``[F, G]`` concatenated, utterance ``u`` in
        ``codes[frame_offsets[u]:frame_offsets[u+1]]``) -> their token sequences."""
        codes = np.asarray(codes)
        frame_offsets = np.asarray(frame_offsets, dtype=np.int64)
        self._check_codes(codes)
        durations = duration_offsets = None
        if self.dedup:
            codes, frame_offsets, durations = _dedup(codes, frame_offsets)
            duration_offsets = frame_offsets
        ids = codes.astype(self.dtype) + self.column_offsets.astype(self.dtype)
        rows, row_offsets = ids, frame_offsets
        if self.layout == "delay":
            rows, row_offsets = _delay(ids, frame_offsets, self.pad_id)
        return TokenBatch(
            rows, row_offsets, self.layout == "interleave", durations, duration_offsets
        )

    def encode(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One utterance's codes ``[T, G]`` -> ``(tokens, durations or None)``."""
        codes = np.asarray(codes)
        batch = self.apply(codes, np.array([0, codes.shape[0] if codes.ndim else 0]))
        return batch.tokens(0), batch.durations_of(0)

    # ------------------------------------------------------------------ inverse

    def decode(self, tokens: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
        """Token sequence (and durations, with dedup) -> codes ``[T, G]`` int64: the
        inverse of :meth:`encode`. Raises ValueError for a sequence no encode gives."""
        ids = np.asarray(tokens)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"tokens must be integers. Found dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        G = self.num_columns
        if self.layout == "interleave":
            if ids.ndim != 1 or ids.size % G:
                raise ValueError(
                    f"interleaved tokens must be 1-D with a multiple of {G} ids. "
                    f"Found shape {tuple(ids.shape)}"
                )
            ids = ids.reshape(-1, G)
        elif ids.ndim != 2 or ids.shape[1] != G:
            raise ValueError(
                f"{self.layout} tokens must be [T, {G}]. Found shape {tuple(ids.shape)}"
            )
        if self.layout == "delay":
            ids = _undelay(ids, self.pad_id)
        codes = ids - self.column_offsets
        for g, card in enumerate(self.cardinalities):
            bad = (codes[:, g] < 0) | (codes[:, g] >= card)
            if bad.any():
                found = int(ids[np.argmax(bad), g])
                lo = int(self.column_offsets[g])
                raise ValueError(f"column {g} holds id {found}, outside [{lo}, {lo + card})")
        return _expand(codes, durations) if self.dedup else codes

    def _check_codes(self, codes: np.ndarray) -> None:
        if codes.ndim != 2 or codes.shape[1] != self.num_columns:
            raise ValueError(f"codes must be [T, {self.num_columns}]. Found shape {codes.shape}")
        if codes.size and (codes.min() < 0 or (codes >= np.array(self.cardinalities)).any()):
            raise ValueError(f"codes out of range for cardinalities {self.cardinalities}")


def flatten(
    codes: np.ndarray,
    cardinalities: tuple[int, ...] | list[int],
    *,
    layout: str = "parallel",
    offsets: bool = False,
    dedup: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes ``[T, G]`` -> ``(tokens, durations or None)``; see the module docstring."""
    return TokenLayout(tuple(cardinalities), layout, offsets, dedup).encode(codes)


def unflatten(
    tokens: np.ndarray,
    cardinalities: tuple[int, ...] | list[int],
    *,
    layout: str = "parallel",
    offsets: bool = False,
    durations: np.ndarray | None = None,
) -> np.ndarray:
    """Tokens (an exported row, a ``.km`` line, a Dataset item) -> codes ``[T, G]``.

    With ``durations`` (an export made with dedup) each frame is repeated that many
    times, giving back the corpus' frames exactly.

    Example:
        >>> unflatten(np.array([3, 1029, 7, 1033]), [1024, 1024], layout="interleave",
        ...           offsets=True).tolist()
        [[3, 5], [7, 9]]
    """
    dedup = durations is not None
    return TokenLayout(tuple(cardinalities), layout, offsets, dedup).decode(tokens, durations)


# --------------------------------------------------------------------- vectorised steps


def _dedup(
    codes: np.ndarray, frame_offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the first frame of every run (runs never cross utterances)."""
    F = codes.shape[0]
    keep = np.ones(F, dtype=bool)
    if F > 1:
        keep[1:] = np.any(codes[1:] != codes[:-1], axis=1)
    starts = frame_offsets[:-1][frame_offsets[:-1] < F]
    keep[starts] = True
    kept = np.flatnonzero(keep)
    durations = np.diff(np.append(kept, F)).astype(np.int64)
    # a run ends at its utterance's end even when the next utterance starts alike: the
    # start was forced into `keep`, so np.diff already stops there
    new_offsets = np.searchsorted(kept, frame_offsets).astype(np.int64)
    return codes[kept], new_offsets, durations


def _delay(
    ids: np.ndarray, frame_offsets: np.ndarray, pad_id: int | None
) -> tuple[np.ndarray, np.ndarray]:
    G = ids.shape[1]
    lengths = np.diff(frame_offsets)
    out_lengths = np.where(lengths > 0, lengths + G - 1, 0)
    out_offsets = np.concatenate([[0], np.cumsum(out_lengths)]).astype(np.int64)
    rows = np.full((int(out_offsets[-1]), G), pad_id, dtype=ids.dtype)
    utterance = np.repeat(np.arange(len(lengths)), lengths)
    dest = out_offsets[:-1][utterance] + (np.arange(ids.shape[0]) - frame_offsets[:-1][utterance])
    for g in range(G):
        rows[dest + g, g] = ids[:, g]
    return rows, out_offsets


def _undelay(ids: np.ndarray, pad_id: int | None) -> np.ndarray:
    rows, G = ids.shape
    if rows == 0:
        return ids
    T = rows - (G - 1)
    if T < 1:
        raise ValueError(f"delayed tokens need at least {G} rows. Found {rows}")
    codes = np.stack([ids[g : g + T, g] for g in range(G)], axis=1)
    pads = np.ones_like(ids, dtype=bool)
    for g in range(G):
        pads[g : g + T, g] = False
    if (ids[pads] != pad_id).any():
        raise ValueError(f"delayed tokens must hold the pad id {pad_id} outside the shifted codes")
    return codes


def _expand(codes: np.ndarray, durations: np.ndarray | None) -> np.ndarray:
    if durations is None:
        raise ValueError("tokens made with dedup need their durations to give back the frames")
    durations = np.asarray(durations)
    if durations.shape != (codes.shape[0],) or (durations.size and durations.min() < 1):
        raise ValueError(
            f"durations must be {codes.shape[0]} positive counts. Found shape {durations.shape}"
        )
    return np.repeat(codes, durations.astype(np.int64), axis=0)
