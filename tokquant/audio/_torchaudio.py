"""torchaudio, imported once, whole, and thread-safely.

torchaudio is imported lazily (feature-only commands never pay for it), but the encode
loaders run in threads: two threads importing ``torchaudio.transforms`` and
``torchaudio.functional`` at once can each see the other's half-initialised module
(``ImportError: cannot import name 'GriffinLim' from partially initialized module``).
So every use goes through :func:`torchaudio` (or :func:`torchaudio_ssl`), which import the
submodules tokquant needs under one lock.
"""

from __future__ import annotations

import threading
from types import ModuleType

_lock = threading.Lock()
_modules: tuple[ModuleType, ModuleType, ModuleType] | None = None


def torchaudio() -> tuple[ModuleType, ModuleType, ModuleType]:
    """``(functional, transforms, compliance.kaldi)``, fully imported."""
    global _modules
    if _modules is None:
        with _lock:
            if _modules is None:
                # start-up time: torchaudio
                import torchaudio.compliance.kaldi as kaldi
                import torchaudio.functional as functional
                import torchaudio.transforms as transforms

                _modules = (functional, transforms, kaldi)
    return _modules


_ssl_modules: tuple[ModuleType, ModuleType] | None = None


def torchaudio_ssl() -> tuple[ModuleType, ModuleType]:
    """``(models, pipelines)``, fully imported, under the same lock (the SSL front end)."""
    global _ssl_modules
    if _ssl_modules is None:
        with _lock:
            if _ssl_modules is None:
                # start-up time: torchaudio
                import torchaudio.models as models
                import torchaudio.pipelines as pipelines

                _ssl_modules = (models, pipelines)
    return _ssl_modules
