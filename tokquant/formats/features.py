"""Feature files: ``[T, D]`` (or ``[D, T]``) float arrays in .npy, .npz, .pt, .safetensors.

A file holds one array; in a multi-array .npz / .safetensors / .pt dict it must be named
``features``. ``.pt`` files are read with ``torch.load(weights_only=True)``: no pickle code
runs. Decoded features are written as ``.npy``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tokquant.errors import InputError
from tokquant.storage.atomic import atomic_path
from tokquant.storage.regular import check_regular
from tokquant.storage.torch_load import quiet_torch_load

SUFFIXES = (".npy", ".npz", ".pt", ".safetensors")
LAYOUTS = ("tc", "ct")


def read_features(path: Path, layout: str = "tc") -> np.ndarray:
    """Return float32 ``[T, D]``; reject what cannot be a feature sequence, naming why."""
    path = Path(path)
    check_regular(path)  # a FIFO, device or folder is refused before any loader opens it
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported feature file type (use {', '.join(SUFFIXES)})")
    try:
        array = _load_retrying(_LOADERS[suffix], path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader failure is the file's fault
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: cannot read {suffix} features ({first})") from None
    if array.dtype.kind not in "f":
        raise InputError(f"{path}: features must be floating point, found dtype {array.dtype}")
    if array.ndim != 2:
        raise InputError(
            f"{path}: features must be 2-D [frames, dim], found shape {list(array.shape)}"
        )
    if layout == "ct":
        array = array.T
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{path}: no frames (shape {list(array.shape)} as [frames, dim])")
    array = np.ascontiguousarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        frame = int(np.argmax(bad.any(axis=1)))
        raise InputError(f"{path}: NaN or Inf in features, first at frame {frame}")
    return array


#: numpy reads a .npy header with ``ast.literal_eval``. CPython 3.11 keeps the AST
#: constructor's recursion depth per interpreter, not per thread, so a parse that
#: overlaps another thread's (a loader thread's, or torch compiling in the main one) can
#: fail with a spurious "SystemError: AST constructor recursion depth mismatch"
#: (python/cpython#106905): a feature file failed encode that way about once in four
#: full test runs. Loader threads parse one at a time, and the spurious error is retried.
_NUMPY_HEADER_LOCK = threading.Lock()
_AST_RACE = "AST constructor recursion depth mismatch"


def _load_retrying(load: Callable[[Path], np.ndarray], path: Path, attempts: int = 3) -> np.ndarray:
    for attempt in range(attempts):
        try:
            return load(path)
        except SystemError as exc:
            if _AST_RACE not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def write_features(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def _single(path: Path, arrays: dict) -> object:
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if "features" in arrays:
        return arrays["features"]
    raise InputError(f"{path}: holds {len(arrays)} arrays; name the one to use 'features'")


def _load_npy(path: Path) -> np.ndarray:
    with _NUMPY_HEADER_LOCK:
        return np.load(path, allow_pickle=False)


def _load_npz(path: Path) -> np.ndarray:
    with _NUMPY_HEADER_LOCK, np.load(path, allow_pickle=False) as data:
        return np.asarray(_single(path, {k: data[k] for k in data.files}))


def _load_pt(path: Path) -> np.ndarray:
    # start-up time: torch
    import torch

    obj = quiet_torch_load(path)
    if isinstance(obj, dict):
        obj = _single(path, obj)
    if not isinstance(obj, torch.Tensor):
        raise InputError(f"{path}: .pt must hold a tensor or a dict of tensors")
    if obj.dtype == torch.bfloat16:
        obj = obj.float()
    return obj.numpy()


def _load_safetensors(path: Path) -> np.ndarray:
    # start-up time: safetensors
    from safetensors.numpy import load_file

    return np.asarray(_single(path, load_file(str(path))))


_LOADERS = {
    ".npy": _load_npy,
    ".npz": _load_npz,
    ".pt": _load_pt,
    ".safetensors": _load_safetensors,
}
