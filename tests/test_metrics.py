"""Audio scores (issue 30) against closed forms and the packages the field uses: the
spectral distances, DNSMOS against ``speechmos`` itself, STOI and PESQ on identical
audio, bitrates by brute force; ``eval`` end to end, and a missing package as one line."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SAMPLES, run_cli
from tokquant.audio import metrics

SPEECH = sf.read(sorted((SAMPLES / "gb_f").glob("*.flac"))[0], dtype="float64")[0]


def test_spectral_distances_of_the_same_audio_are_zero_and_grow_with_noise():
    rng = np.random.default_rng(0)
    assert metrics.mel_distance(SPEECH, SPEECH) == 0.0
    assert metrics.stft_distance(SPEECH, SPEECH) == 0.0
    noisy = [SPEECH + s * rng.standard_normal(SPEECH.size) for s in (0.001, 0.01, 0.1)]
    mel = [metrics.mel_distance(SPEECH, x) for x in noisy]
    stft = [metrics.stft_distance(SPEECH, x) for x in noisy]
    assert mel == sorted(mel) and stft == sorted(stft) and mel[0] > 0


def test_stft_distance_of_a_scaled_signal_is_its_closed_form():
    """``a * x``: spectral convergence ``|1 - a|``, log-magnitude L1 ``|ln a|``."""
    x = np.random.default_rng(1).standard_normal(16000)  # no bin near the 1e-7 floor
    for a in (0.5, 0.9, 2.0):
        assert metrics.stft_distance(x, a * x) == pytest.approx(abs(1 - a) + abs(math.log(a)),
                                                                rel=1e-9)  # fmt: skip


def test_bitrates_by_brute_force():
    assert metrics.bitrate_kbps(100.0, [1024] * 8) == pytest.approx(8.0)
    assert metrics.bitrate_kbps(50.0, [2] * 16) == pytest.approx(0.8)
    rng = np.random.default_rng(2)
    codes = [rng.integers(0, 4, size=(n, 2)) for n in (30, 50)]
    codes[1][:, 1] = 3  # a column that is sometimes constant
    expected = 0.0
    for g in range(2):
        values = np.concatenate([c[:, g] for c in codes])
        p = np.array([np.mean(values == v) for v in range(4)])
        expected -= sum(q * math.log2(q) for q in p if q > 0)
    assert metrics.entropy_kbps(codes, [4, 4], 100.0) == pytest.approx(expected * 100 / 1000)
    assert metrics.entropy_kbps([np.zeros((10, 1), int)], [8], 100.0) == 0.0


@pytest.mark.skipif(importlib.util.find_spec("speechmos") is None, reason="needs speechmos")
def test_dnsmos_equals_speechmos_on_speech_and_noise():
    from speechmos import dnsmos

    noise = np.random.default_rng(3).uniform(-0.3, 0.3, 16000 * 12).astype(np.float32)
    for audio in (SPEECH.astype(np.float32), noise):
        ours = metrics.dnsmos(audio)
        theirs = dnsmos.run(audio, 16000)
        assert ours["dnsmos_sig"] == pytest.approx(theirs["sig_mos"], abs=1e-5)
        assert ours["dnsmos_bak"] == pytest.approx(theirs["bak_mos"], abs=1e-5)
        assert ours["dnsmos_ovrl"] == pytest.approx(theirs["ovrl_mos"], abs=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("pesq") is None, reason="needs pesq and pystoi")
def test_stoi_and_pesq_of_identical_audio_are_their_maxima():
    scores = metrics.score(SPEECH, SPEECH, 16000, skip=("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"))
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert scores["pesq_wb"] == pytest.approx(4.644, abs=0.01)  # P.862.2's ceiling
    assert metrics.pesq_wb(np.zeros(16000), np.zeros(16000)) is None  # no speech: undefined


@pytest.fixture(scope="module")
def encoded(logmel_rvq, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "tok"
    assert run_cli("encode", logmel_rvq, SAMPLES / "gb_m", "--out", out, "-q").code == 0
    return out


def test_eval_scores_every_file_and_the_bitrates(logmel_rvq, encoded, tmp_path):
    res = run_cli("eval", logmel_rvq, encoded, "--audio", SAMPLES / "gb_m", "--json",
                  "--plot", tmp_path / "png")  # fmt: skip
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert [r["key"] for r in report["rows"]] == [f"utt{i:02d}" for i in range(6)]
    assert report["decoder"] == "griffin-lim" and report["bitrate_kbps"] == pytest.approx(1.5)
    assert 0 < report["entropy_kbps"] <= 1.5
    for row in report["rows"]:
        assert 0 < row["mel_distance"] < 2 and 0 <= row.get("stoi", 0.5) <= 1
    assert set(report["overall"]) >= {"mel_distance", "stft_distance"}
    assert len(list((tmp_path / "png").glob("*.png"))) == 6
    one = SAMPLES / "gb_m" / "utt00.flac"
    table = run_cli("eval", logmel_rvq, encoded / "utt00.tokens.safetensors", "--audio", one)
    assert table.code == 0 and "kbps nominal" in table.err and "all" in table.out


def test_a_missing_package_is_one_line_and_the_rest_is_scored(logmel_rvq, encoded, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pesq" else real(name, *a))  # fmt: skip
    res = run_cli("eval", logmel_rvq, encoded / "utt01.tokens.safetensors", "--audio",
                  SAMPLES / "gb_m" / "utt01.flac", "--json")  # fmt: skip
    assert res.code == 0, res.err
    warnings = [line for line in res.err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: not scored: pesq_wb: needs pesq (pip install 'tokquant[metrics]')"
    ]
    report = json.loads(res.out)
    assert "pesq_wb" not in report["overall"] and "mel_distance" in report["overall"]


def test_speaker_similarity_is_one_for_the_same_audio_and_works_offline(monkeypatch):
    """Resemblyzer's encoder ships in its wheel: with every connection refused the score
    is still computed (nothing is downloaded)."""
    pytest.importorskip("resemblyzer")
    import socket

    import soundfile as sf

    from tokquant.audio import metrics

    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    a = sf.read(SAMPLES / "us_m" / "utt00.flac", dtype="float32")[0].astype(np.float64)
    b = sf.read(SAMPLES / "gb_f" / "utt00.flac", dtype="float32")[0].astype(np.float64)
    assert metrics.speaker_similarity(a, a) == pytest.approx(1.0, abs=1e-6)
    assert -1 <= metrics.speaker_similarity(a, b) < 0.99
    assert metrics.speaker_similarity(a, np.zeros(16000)) is None  # silence: nothing to embed
    assert metrics.speaker_similarity(a, a[:800]) is None  # 50 ms
