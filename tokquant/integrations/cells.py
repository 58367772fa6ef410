"""One audio cell of another engine's batch (a ``datasets`` row, a Ray Data row) as the
samples and rate ``Tokenizer.encode_audio`` takes, whichever way the engine holds it."""

from __future__ import annotations

from typing import Any


def samples(cell: Any, column: str, rate: Any = None) -> tuple[Any, int]:
    """``(wave [C, N] or [N], rate)`` of one cell: the ``Audio`` feature's decoded
    ``{"array", "sampling_rate"}``, its undecoded ``{"bytes", "path"}``, encoded file
    bytes, or an array of samples whose ``rate`` comes from the row."""
    import numpy as np

    if isinstance(cell, dict) and cell.get("array") is not None:
        return _channels_first(np.asarray(cell["array"])), int(cell["sampling_rate"])
    blob = cell.get("bytes") if isinstance(cell, dict) else cell
    if isinstance(blob, (bytes, bytearray, memoryview)):
        if not blob:
            raise ValueError(f"column {column!r}: a cell holds empty audio bytes")
        from tokquant.audio.io import AudioReader

        with AudioReader.from_bytes(bytes(blob), column) as reader:
            return reader.read(0, reader.num_samples).T, reader.sample_rate
    if isinstance(blob, np.ndarray) and blob.dtype.kind in "fiu" and blob.ndim in (1, 2):
        if rate is None:
            raise ValueError(
                f"column {column!r}: an array of samples needs its sample rate (a rate column)"
            )
        return _channels_first(blob), int(rate)
    raise ValueError(f"column {column!r}: a cell holds neither decoded audio nor audio bytes")


def encode_cells(
    tok: Any,
    cells: Any,
    column: str,
    rates: Any = None,
    *,
    levels: int | None,
    beam: int | None,
    batch_frames: int,
) -> list[Any]:
    """Codes ``[T, G]`` of each cell of a batch (:func:`samples`; ``rates`` per row
    where cells are arrays), channels averaged whatever their number, as
    ``tokquant encode`` mixes a file's."""
    decoded = [
        samples(cell, column, None if rates is None else rates[i]) for i, cell in enumerate(cells)
    ]
    if not decoded:
        return []
    return tok.encode_audio(
        [w for w, _ in decoded],
        [r for _, r in decoded],
        channel="mix",
        levels=levels,
        beam=beam,
        batch_frames=batch_frames,
    )


def _channels_first(wave: Any) -> Any:
    """``[N, C]`` (as soundfile and ``datasets`` give several channels) -> ``[C, N]``."""
    return wave.T if wave.ndim == 2 and wave.shape[0] > wave.shape[1] else wave
