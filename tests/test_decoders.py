"""The one decoder interface (issue 38, item 2): a decoder written here, in this module
alone, reaches ``decode --audio --vocoder``, ``eval`` and ``Tokenizer.decode_audio``
through :func:`tokquant.decoders.register`; the built-in decoders go through the same
pipeline (mel match where it applies, no NaN audio)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import tokquant
from tests.conftest import SAMPLES, run_cli
from tokquant.decoders import Decoder, decode, open_decoder, register, unregister
from tokquant.decoders.griffin_lim import GriffinLim
from tokquant.errors import InputError


class Gain(Decoder):
    """Griffin-Lim's audio times a gain: a decoder of a new kind, in one class."""

    mel_match = None  # its magnitudes are Griffin-Lim's: no mel match step

    def __init__(self, gain: float) -> None:
        self.gain = gain
        self.name = self.identity = f"gain:{gain:g}"

    def check(self, tok) -> None:
        GriffinLim().check(tok)

    def waveform(self, tok, features: np.ndarray) -> torch.Tensor:
        return GriffinLim().waveform(tok, features) * self.gain


def open_gain(spec, tok):
    text = str(spec)
    return Gain(float(text.removeprefix("gain:"))) if text.startswith("gain:") else None


@pytest.fixture
def gain_decoder():
    register(open_gain)
    yield
    unregister(open_gain)


@pytest.fixture(scope="module")
def tokens(logmel_rvq, tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    (root / "wav").mkdir()
    for name in ("utt00", "utt01"):
        (root / "wav" / f"{name}.flac").write_bytes(
            (SAMPLES / "us_m" / f"{name}.flac").read_bytes()
        )
    assert run_cli("encode", logmel_rvq, root / "wav", "--out", root / "tok", "-q").code == 0
    return root


def test_a_decoder_of_this_module_reaches_the_api_decode_and_eval(
    logmel_rvq, tokens, tmp_path, gain_decoder
):
    tok = tokquant.load(logmel_rvq)
    codes = tok.encode_audio(sf.read(tokens / "wav" / "utt00.flac", dtype="float32")[0], 16000)
    plain = tok.decode_audio(codes)
    assert torch.allclose(tok.decode_audio(codes, vocoder="gain:0.5"), plain * 0.5, atol=1e-7)
    # decode --audio --vocoder, and what the folder records
    res = run_cli("decode", logmel_rvq, tokens / "tok", "--audio", "--out", tmp_path / "g",
                  "--vocoder", "gain:0.5")  # fmt: skip
    assert res.code == 0, res.err
    half = sf.read(tmp_path / "g" / "utt00.wav", dtype="float32")[0]
    assert np.abs(half - plain.numpy() * 0.5).max() <= 1.0 / 32768 + 1e-7  # 16-bit wav
    record = json.loads((tmp_path / "g" / ".tokquant-decode.json").read_text())
    assert record["settings"]["decoder"] == "gain:0.5" and "mel_match" not in record["settings"]
    res = run_cli("decode", logmel_rvq, tokens / "tok", "--audio", "--out", tmp_path / "g",
                  "--vocoder", "gain:0.25")  # fmt: skip
    assert res.code == 2 and "was decoded with other settings (decoder)" in res.err
    # eval scores through it
    res = run_cli("eval", logmel_rvq, tokens / "tok", "--audio", tokens / "wav",
                  "--vocoder", "gain:0.5", "--json")  # fmt: skip
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["decoder"] == "gain:0.5" and len(report["rows"]) == 2


def test_open_decoder_gives_the_builtin_decoders_and_checks_them(logmel_rvq, trained):
    tok = tokquant.load(logmel_rvq)
    assert isinstance(open_decoder(None, tok), GriffinLim)
    gain = Gain(2.0)
    assert open_decoder(gain, tok) is gain
    with pytest.raises(InputError, match="no such file or folder"):
        open_decoder("gain:2", tok)  # not registered here: a path that is not there
    features_tok = tokquant.load(trained)  # a feature tokenizer: no Griffin-Lim
    with pytest.raises(InputError, match="Griffin-Lim inverts logmel and fbank"):
        open_decoder(None, features_tok)


def test_the_pipeline_refuses_audio_that_is_not_finite(logmel_rvq):
    class Broken(Gain):
        def waveform(self, tok, features):
            wave = super().waveform(tok, features)
            wave[10] = float("nan")
            return wave

    tok = tokquant.load(logmel_rvq)
    features = tok.decode(torch.zeros(5, 3, dtype=torch.long)).numpy()
    with pytest.raises(InputError, match="gain:1: decoded audio holds NaN or Inf"):
        decode(Broken(1.0), tok, features)
