"""One audio cell of another engine's batch (a ``datasets`` row, a Ray Data row) as the
samples and rate ``Tokenizer.encode_audio`` takes, whichever way the engine holds it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tokquant.errors import InputError


def samples(cell: Any, column: str, rate: Any = None, row: int | None = None) -> tuple[Any, int]:
    """``(wave [C, N] or [N], rate)`` of one cell, in each shape an engine gives audio:
    the ``Audio`` feature decoded (``datasets`` 4 and later: a torchcodec
    ``AudioDecoder``; earlier: ``{"array", "sampling_rate"}``), or not
    (``{"bytes", "path"}``: the bytes, else the local file at ``path``), encoded file
    bytes, or an array of samples whose ``rate`` comes from the row. Anything else is a
    ``ValueError`` naming the column and ``row``."""
    # start-up time: numpy
    import numpy as np

    where = f"column {column!r}" + (f", row {row}" if row is not None else "")
    if hasattr(cell, "get_all_samples"):  # torchcodec's AudioDecoder (datasets >= 4)
        try:
            decoded = cell.get_all_samples()
        except Exception as exc:  # noqa: BLE001 - the decoder's own refusal, one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"{where}: the audio cannot be decoded ({first[:120]})") from None
        return decoded.data.numpy(), _rate(decoded.sample_rate, where)
    if isinstance(cell, dict) and cell.get("array") is not None:
        if "sampling_rate" not in cell:
            raise ValueError(f"{where}: a decoded audio cell has no 'sampling_rate'")
        return _channels_first(np.asarray(cell["array"])), _rate(cell["sampling_rate"], where)
    blob = cell.get("bytes") if isinstance(cell, dict) else cell
    if isinstance(blob, (bytes, bytearray, memoryview)):
        if not blob:
            raise ValueError(f"{where}: a cell holds empty audio bytes")
        # start-up time: numpy
        from tokquant.audio.io import AudioReader

        with AudioReader.from_bytes(bytes(blob), column) as reader:
            return reader.read(0, reader.num_samples).T, reader.sample_rate
    path = cell.get("path") if isinstance(cell, dict) else None
    if isinstance(path, str) and path:  # Audio(decode=False) over local files
        return _local_file(path, where)
    if isinstance(blob, np.ndarray) and blob.dtype.kind in "fiu" and blob.ndim in (1, 2):
        if rate is None:
            raise ValueError(f"{where}: an array of samples needs its sample rate (a rate column)")
        return _channels_first(blob), _rate(rate, where)
    raise ValueError(f"{where}: a cell holds neither decoded audio nor audio bytes or a path")


def _local_file(path: str, where: str) -> tuple[Any, int]:
    """The audio of a file a cell names: a local path only (a URL is never fetched), opened
    as every input is (no FIFO or device)."""
    # start-up time: numpy
    from tokquant.audio.io import AudioReader

    if "://" in path:
        raise ValueError(f"{where}: {path[:80]} is a URL; tokquant reads local files only")
    try:
        with AudioReader(Path(path)) as reader:
            return reader.read(0, reader.num_samples).T, reader.sample_rate
    except InputError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _rate(value: Any, where: str) -> int:
    """A sample rate from a cell or a rate column: a whole number of Hz in the range an
    audio header may claim."""
    # start-up time: numpy
    import numpy as np

    # start-up time: numpy
    from tokquant.audio.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    if isinstance(value, np.generic):
        value = value.item()
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value != int(value):
        raise ValueError(f"{where}: sample rate must be a whole number of Hz, found {value!r}")
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{where}: sample rate {value!r} is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]"
        )
    return int(value)


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
    if rates is not None and len(rates) != len(cells):
        raise ValueError(
            f"column {column!r}: the batch has {len(cells)} rows but {len(rates)} sample rates"
        )
    decoded = [
        samples(cell, column, None if rates is None else rates[i], row=i)
        for i, cell in enumerate(cells)
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
