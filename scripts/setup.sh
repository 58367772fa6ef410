#!/usr/bin/env bash
# Create .venv (if missing) and install tokquant with its dev extra into it.
# torch and torchaudio come as a matched pair (see pyproject.toml); about 5 GB, 2 minutes.
#   --voices  also install the speech synthesisers scripts/make_sample_corpus.py reads
#             with (Debian's espeak-ng, flite, festival and six festival voices, ~40 MB),
#             for the held-out set and for training decoders on more voices
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = --voices ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "--voices installs Debian packages: run it as root on Debian" >&2
    exit 2
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-czech-dita \
    festvox-czech-krb festvox-czech-machac festvox-ca-ona-hts >/dev/null
elif [ -n "${1:-}" ]; then
  echo "usage: bash scripts/setup.sh [--voices]" >&2
  exit 2
fi
# FFmpeg's shared libraries, through which `datasets` decodes an Audio() column
# (torchcodec); the tests of tokquant.integrations.hf read such columns. Debian's
# packages, installed where this runs as root and they are missing.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! ldconfig -p | grep -q libavcodec; then
  { apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswresample4 libavfilter8 libavdevice59 \
      libswscale6 >/dev/null; } ||
    echo "warning: FFmpeg's libraries could not be installed; tests that decode datasets' audio columns will skip" >&2
fi
# A headless browser for the listening page's test (tests/test_listening_page.py): Debian's
# chromium and its driver, where this runs as root and they are missing.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromedriver >/dev/null; then
  { apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver >/dev/null; } ||
    echo "warning: chromium could not be installed; the listening page's browser test will skip" >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
# Test-only peer for `tokquant import dac`: its quantizer module needs only torch and
# einops, while the package's own dependencies (descript-audiotools) are large.
.venv/bin/python -m pip install -q --no-deps "descript-audio-codec==1.0.0"
# Test-only: the Vocos and BigVGAN packages, whose mels and models the tests compare with
# tokquant's. Their code needs only what the dev extra has; their own dependency lists
# (pytorch-lightning for vocos' training, tensorboard and nnAudio for bigvgan's) are not.
.venv/bin/python -m pip install -q --no-deps "vocos==0.1.0" "bigvgan==2.4.1"
