"""Audio file I/O through soundfile (libsndfile): reading in ranges, writing wav.

Everything libsndfile reads is accepted (wav, flac, ogg/vorbis, opus, mp3, aiff, ...),
in any sample format (int16, int24, int32, float) and channel count. Samples come back as
float32 in [-1, 1]. Reads are by sample range, so long files never need to fit in memory.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tokquant.errors import InputError
from tokquant.storage.atomic import atomic_path
from tokquant.storage.regular import open_regular

SUFFIXES = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aiff",
    ".aif",
    ".aifc",
    ".au",
    ".snd",
    ".w64",
    ".caf",
    ".rf64",
)


#: The sample rates a header may claim. Below 1 kHz no speech is left, and a tiny file
#: claiming 1 Hz resamples into hundreds of millions of samples at the tokenizer's rate.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 10_000_000


class AudioReader:
    """An open audio file: ``sample_rate``, ``num_samples``, ``channels``, ranged reads.

    Use as a context manager. Every failure is an :class:`InputError` naming the file.
    """

    def __init__(self, path: Path, data: bytes | BinaryIO | None = None) -> None:
        # start-up time: soundfile
        import soundfile as sf

        self.path = Path(path) if data is None else path
        if data is None:  # a FIFO or device listed in a manifest is refused, not opened
            self._fh: BinaryIO = open_regular(self.path)
            size = os.fstat(self._fh.fileno()).st_size
        else:
            self._fh = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
            size = self._fh.seek(0, io.SEEK_END)
            self._fh.seek(0)
        if size == 0:
            self._fh.close()
            raise InputError(f"{self.path}: empty file (0 bytes)")
        try:
            # a file's descriptor itself, so libsndfile reads it natively, not via Python
            self._file = sf.SoundFile(
                self._fh.fileno() if data is None else self._fh, closefd=False
            )
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            self._fh.close()
            detail = str(exc).split(":")[-1].strip() or "unknown format"
            raise InputError(f"{self.path}: not readable audio ({detail})") from None
        self.sample_rate = int(self._file.samplerate)
        self.num_samples = int(self._file.frames)
        self.channels = int(self._file.channels)
        if self.num_samples <= 0:
            self.close()
            raise InputError(f"{self.path}: audio has no samples")
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            self.close()
            raise InputError(
                f"{self.path}: its header says {self.sample_rate} Hz, outside "
                f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] (a damaged or hostile header?)"
            )

    @classmethod
    def from_bytes(cls, data: bytes | BinaryIO, name: str) -> AudioReader:
        """Encoded audio held in memory (a Parquet cell) or in a seekable binary file
        object (a tar member's byte range), named ``name`` in messages; read as the same
        bytes in a file would be."""
        return cls(name, data)  # type: ignore[arg-type]

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        self._fh.close()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (clamped to the file) as float32 ``[n, channels]``."""
        # start-up time: soundfile
        import soundfile as sf

        start = max(0, min(start, self.num_samples))
        stop = max(start, min(stop, self.num_samples))
        try:
            self._file.seek(start)
            data = self._file.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{self.path}: cannot read samples {start}-{stop} ({exc})") from None
        if data.shape[0] != stop - start:
            raise InputError(
                f"{self.path}: file is truncated (read {data.shape[0]} of {stop - start} "
                f"samples from {start})"
            )
        bad = ~np.isfinite(data)
        if bad.any():
            first = start + int(np.argmax(bad.any(axis=1)))
            raise InputError(f"{self.path}: NaN or Inf in audio, first at sample {first}")
        return data


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio ``[n]`` as 16-bit PCM wav, atomically; clipped to [-1, 1]."""
    # start-up time: soundfile
    import soundfile as sf

    audio = np.asarray(audio, dtype=np.float32)
    bad = ~np.isfinite(audio)
    if bad.any():  # clipping would write NaN as -1.0: a wav of garbage that looks fine
        raise InputError(
            f"{path}: decoded audio holds NaN or Inf (first at sample {int(np.argmax(bad))}); "
            f"not written"
        )
    clipped = np.clip(audio, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), clipped, sample_rate, subtype="PCM_16", format="WAV")
