#!/usr/bin/env bash
# Create .venv (if missing) and install tokquant with its dev extra into it.
# torch and torchaudio come as a matched pair (see pyproject.toml); about 5 GB, 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
# Test-only peer for `tokquant import dac`: its quantizer module needs only torch and
# einops, while the package's own dependencies (descript-audiotools) are large.
.venv/bin/python -m pip install -q --no-deps "descript-audio-codec==1.0.0"
