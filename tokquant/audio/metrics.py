"""How decoded audio is scored in the field's tables (Codec-SUPERB, DASB, VERSA,
ESPnet-Codec): spectral distances, intelligibility (STOI), quality (PESQ wide-band),
non-intrusive MOS (DNSMOS P.835), and bitrates.

Every score compares at 16 kHz, the rate PESQ-WB and DNSMOS are defined at: both
waveforms are resampled (torchaudio's sinc) and cut to the shorter one. The spectral
distances are tokquant's own closed forms (below); STOI, PESQ and DNSMOS come from the
packages the papers use (``pystoi``, ``pesq``, and the DNSMOS ONNX models that the
``speechmos`` wheel ships, run by onnxruntime: nothing is downloaded), and speaker
similarity from Resemblyzer's speaker encoder (its weights ship in its wheel). A score
whose package is missing is reported missing, with the one line that installs it.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokquant.audio._torchaudio import torchaudio

#: The rate every score is computed at.
RATE = 16_000
#: Spectral distances first (always there), then the scores of optional packages.
SCORES = (
    "mel_distance",
    "stft_distance",
    "stoi",
    "pesq_wb",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
    "speaker_similarity",
)
#: Which package each optional score needs.
NEEDS = {
    "stoi": "pystoi",
    "pesq_wb": "pesq",
    "dnsmos_sig": "speechmos",
    "dnsmos_bak": "speechmos",
    "dnsmos_ovrl": "speechmos",
    "speaker_similarity": "resemblyzer",
}
INSTALL = "pip install 'tokquant[metrics]'"
#: A package whose extra is not ``metrics``.
EXTRA = {"resemblyzer": "pip install 'tokquant[speaker]'"}
#: Resolutions of the multi-resolution STFT distance: (n_fft, hop).
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def missing_packages() -> dict[str, str]:
    """Score -> why it cannot be computed here (its package is not installed)."""
    return {
        score: f"{score}: needs {package} ({EXTRA.get(package, INSTALL)})"
        for score, package in NEEDS.items()
        if importlib.util.find_spec(package) is None
    }


def at_16k(wave: np.ndarray, rate: int) -> np.ndarray:
    """A mono float64 waveform at :data:`RATE`."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float64))
    if rate != RATE:
        x = torchaudio()[0].resample(x, rate, RATE)
    return x.numpy()


def score(
    reference: np.ndarray, decoded: np.ndarray, rate: int, skip: Sequence[str] = ()
) -> dict[str, float | None]:
    """Every score of ``decoded`` against ``reference`` (mono, both at ``rate``), but
    those in ``skip``; None where a score is undefined (PESQ on silence)."""
    check_scorable(reference, rate, "reference audio")
    check_scorable(decoded, rate, "decoded audio")
    ref, est = at_16k(reference, rate), at_16k(decoded, rate)
    n = min(len(ref), len(est))
    ref, est = ref[:n], est[:n]
    out: dict[str, float | None] = {}
    if "mel_distance" not in skip:
        out["mel_distance"] = mel_distance(ref, est)
    if "stft_distance" not in skip:
        out["stft_distance"] = stft_distance(ref, est)
    if "stoi" not in skip:
        out["stoi"] = stoi(ref, est)
    if "pesq_wb" not in skip:
        out["pesq_wb"] = pesq_wb(ref, est)
    if not {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} <= set(skip):
        out.update(dnsmos(est))
    if "speaker_similarity" not in skip:
        out["speaker_similarity"] = speaker_similarity(ref, est)
    return {k: v for k, v in out.items() if k not in skip}


#: The shortest audio scored: PESQ needs a quarter second, and the widest STFT of the
#: distances (2,048 points, centred) needs more than half its window.
MIN_SECONDS = 0.25
#: Audio louder than this is no recording of sound: PESQ's filters overflow on it.
MAX_PEAK = 100.0


def check_scorable(wave: np.ndarray, rate: int, what: str) -> None:
    """ValueError naming why ``wave`` cannot be scored (too short, NaN or Inf, far
    louder than audio in [-1, 1]): one line for its file, never an error deep inside a
    scoring package."""
    wave = np.asarray(wave)
    if len(wave) < MIN_SECONDS * rate:
        raise ValueError(
            f"{what} is {len(wave) / rate:.3f} s, too short to score (at least {MIN_SECONDS} s)"
        )
    if not np.isfinite(wave).all():
        raise ValueError(f"{what} holds NaN or Inf")
    peak = float(np.abs(wave).max())
    if peak > MAX_PEAK:
        raise ValueError(f"{what} peaks at {peak:.3g}, far outside [-1, 1]")


def stoi(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    """STOI (Taal et al. 2011) of 16 kHz audio; None where too little speech is left
    after silent frames are dropped (pystoi then returns 1e-5 with a warning, which
    would read as a score)."""
    # optional extra: pystoi
    from pystoi import stoi as pystoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi(reference, decoded, RATE, extended=False))
    return None if any("Not enough" in str(w.message) for w in caught) else value


def _mel_banks(n_fft: int) -> torch.Tensor:
    return (
        torchaudio()[0]
        .melscale_fbanks(n_fft // 2 + 1, 0.0, RATE / 2, 80, RATE, norm="slaney", mel_scale="slaney")
        .double()
    )


def _magnitude(x: np.ndarray, n_fft: int, hop: int) -> torch.Tensor:
    """``|STFT|`` ``[frames, bins]`` (Hann window, centred frames)."""
    wave = torch.as_tensor(x, dtype=torch.float64)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(wave, n_fft, hop, window=window, center=True, return_complex=True)
    return spec.abs().T


def log_mel(wave: np.ndarray) -> np.ndarray:
    """log10 mel magnitudes ``[frames, 80]`` of 16 kHz audio (80 Slaney bands to 8 kHz,
    1024-point frames every 256 samples, floored at 1e-5)."""
    return (_magnitude(wave, 1024, 256) @ _mel_banks(1024)).clamp(min=1e-5).log10().numpy()


def mel_distance(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Mean absolute difference of :func:`log_mel` s: 0 for the same audio."""
    return float(np.abs(log_mel(reference) - log_mel(decoded)).mean())


def stft_distance(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Multi-resolution STFT distance: over :data:`STFT_RESOLUTIONS`, the mean of the
    spectral convergence ``||S - S'||_F / ||S||_F`` plus the mean absolute difference of
    log magnitudes (floored at 1e-7), as the multi-resolution STFT loss of
    Parallel WaveGAN defines it."""
    total = 0.0
    for n_fft, hop in STFT_RESOLUTIONS:
        ref, est = _magnitude(reference, n_fft, hop), _magnitude(decoded, n_fft, hop)
        convergence = torch.linalg.norm(ref - est) / torch.linalg.norm(ref).clamp(min=1e-12)
        log_l1 = (ref.clamp(min=1e-7).log() - est.clamp(min=1e-7).log()).abs().mean()
        total += float(convergence + log_l1)
    return total / len(STFT_RESOLUTIONS)


def pesq_wb(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    """PESQ wide-band (ITU-T P.862.2) MOS-LQO; None where PESQ finds no speech."""
    # optional extra: pesq
    from pesq import PesqError, pesq

    try:
        return float(pesq(RATE, reference, decoded, "wb"))
    except PesqError:
        return None


#: DNSMOS P.835 maps its network's raw scores to MOS with these polynomials (highest
#: power first), as Microsoft's reference script does for the non-personalised model.
_DNSMOS_FITS = {
    "dnsmos_sig": (-0.08397278, 1.22083953, 0.0052439),
    "dnsmos_bak": (-0.13166888, 1.60915514, -0.39604546),
    "dnsmos_ovrl": (-0.06766283, 1.11546468, 0.04602535),
}
#: The network's window: 9.01 s, moved by 1 s; shorter audio is looped to fill it.
_DNSMOS_SECONDS = 9.01


@functools.cache
def _dnsmos_session() -> Any:
    # optional extra: onnxruntime
    import onnxruntime

    spec = importlib.util.find_spec("speechmos")
    assert spec is not None and spec.submodule_search_locations
    model = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models" / "sig_bak_ovr.onnx"
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def dnsmos(decoded: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 (signal, background, overall) of 16 kHz audio: the ONNX model the
    ``speechmos`` wheel ships (``dnsmos_models/sig_bak_ovr.onnx``), run by onnxruntime
    over 9.01 s windows every second, as Microsoft's script and ``speechmos`` run it
    (audio under 9.01 s is looped to fill a window); the window scores are averaged."""
    session = _dnsmos_session()
    audio = np.clip(np.asarray(decoded, dtype=np.float32), -1.0, 1.0)
    need = int(_DNSMOS_SECONDS * RATE)
    if len(audio) == 0:
        audio = np.zeros(need, dtype=np.float32)
    while len(audio) < need:
        audio = np.append(audio, audio)
    raw = []
    for i in range(int(np.floor(len(audio) / RATE) - _DNSMOS_SECONDS) + 1):
        segment = audio[int(i * RATE) : int((i + _DNSMOS_SECONDS) * RATE)]
        if len(segment) >= need:
            raw.append(session.run(None, {"input_1": segment[None, :]})[0][0])
    scores = np.asarray(raw, dtype=np.float64)  # [windows, (sig, bak, ovrl)]
    return {
        name: float(np.mean(np.polyval(fit, scores[:, i])))
        for i, (name, fit) in enumerate(_DNSMOS_FITS.items())
    }


@functools.cache
def _speaker_encoder() -> Any:
    # optional extra: resemblyzer
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def speaker_similarity(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    """Cosine similarity of the two 16 kHz signals' speaker embeddings: Resemblyzer's
    GE2E encoder, whose weights its wheel ships (nothing is downloaded), after its own
    preprocessing (loudness normalisation, long silences trimmed). None where either has
    no speech left to embed (silence, under a tenth of a second)."""
    # optional extra: resemblyzer
    from resemblyzer import preprocess_wav

    with warnings.catch_warnings():  # silence normalises to NaN: refused below
        warnings.simplefilter("ignore", RuntimeWarning)
        waves = [
            preprocess_wav(np.asarray(w, dtype=np.float32), RATE) for w in (reference, decoded)
        ]
    if any(len(w) < RATE // 10 or not np.isfinite(w).all() for w in waves):
        return None
    encoder = _speaker_encoder()
    a, b = (encoder.embed_utterance(w) for w in waves)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def bitrate_kbps(frame_rate: float, cardinalities: Sequence[int]) -> float:
    """The codes' nominal rate: frames per second x ``sum(log2 K)`` bits per frame."""
    return frame_rate * sum(math.log2(k) for k in cardinalities) / 1000.0


def entropy_kbps(
    codes: Sequence[np.ndarray], cardinalities: Sequence[int], frame_rate: float
) -> float:
    """The rate an ideal per-column entropy coder reaches on these codes: frames per
    second x the sum over columns of each column's unigram entropy in bits."""
    bits = 0.0
    for g, k in enumerate(cardinalities):
        counts = np.zeros(k, dtype=np.int64)
        for c in codes:
            counts += np.bincount(np.asarray(c)[:, g], minlength=k)[:k]
        p = counts[counts > 0] / max(1, counts.sum())
        bits += float(-(p * np.log2(p)).sum())
    return frame_rate * bits / 1000.0
