"""Decoders from tokens to audio (issue 30): the inverse STFT head against its closed form,
chunked decoding against whole, the vocoder file (round trip, corrupt, made for another
tokenizer), train-vocoder with resume, decode --vocoder and ``decode_audio(vocoder=)``,
and an SSL-unit tokenizer's vocoder against silence and noise."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import SAMPLES, run_cli
from tests.test_hostile import error_lines
from tokquant.audio.metrics import at_16k, mel_distance
from tokquant.decoders import open_decoder
from tokquant.decoders.chunks import vocode
from tokquant.decoders.trained.file import load_vocoder, save_vocoder
from tokquant.decoders.trained.network import ISTFTHead, Vocoder, VocoderConfig
from tokquant.errors import FormatError, InputError

SPEAKER = sorted((SAMPLES / "us_m").glob("*.flac"))


def test_istft_head_inverts_a_centred_stft_half_a_hop_late():
    """``same`` padding: T frames -> T * hop samples, sample k = input sample k - hop/2."""
    n_fft, hop = 64, 16
    head = ISTFTHead(8, n_fft, hop)
    x = torch.randn(1, 40 * hop, dtype=torch.float64)
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                      center=True, return_complex=True)  # fmt: skip
    head.window = head.window.double()
    y = head._istft(spec[:, :, :40])
    assert y.shape == (1, 40 * hop)
    inner = slice(n_fft, 40 * hop - n_fft)
    shifted = y[0, hop // 2 :][inner]
    assert torch.allclose(shifted, x[0][inner], atol=1e-9)


def _small(feature_dim: int = 40, hop: int = 160) -> Vocoder:
    torch.manual_seed(0)
    return Vocoder(VocoderConfig(feature_dim, hop, 16000, dim=32, intermediate=64, layers=2)).eval()


def test_chunked_decoding_equals_whole():
    net = _small()
    feats = np.random.default_rng(0).standard_normal((410, 40)).astype(np.float32)
    whole = vocode(net, feats, 200, chunk_frames=10_000)
    assert whole.shape == (200 + 410 * 160,)
    for chunk in (37, 100, 409):
        assert torch.allclose(vocode(net, feats, 200, chunk_frames=chunk), whole, atol=1e-5)


def _front(**changes):
    from tokquant.tokenizer.config.frontend import FrontendConfig

    return FrontendConfig(kind="logmel", n_mels=40, **changes)


@pytest.mark.parametrize("changes", [{}, {"power": 1.0, "reflect_pad": 200}])
def test_the_mel_match_scales_by_a_uniform_band_ratio_exactly(changes):
    """Closed form: features ``+1`` in every band ask for ``e`` times the energy, so each
    bin's gain is ``e`` and the audio is the input times ``e ** (strength / power)``
    (away from the ends, where the match's framing mirrors the signal)."""
    from tokquant.audio.frontend import FrontEnd
    from tokquant.decoders.mel import match_mel

    front = _front(**changes)
    speech = torch.from_numpy(sf.read(SPEAKER[0], dtype="float32")[0])
    padded = torch.nn.functional.pad(speech[None], (front.reflect_pad,) * 2, mode="reflect")[0]
    features = FrontEnd(front).features(padded)  # as the streaming reader frames them
    assert torch.equal(match_mel(front, speech, features + 1.0, strength=0.0), speech)
    inner = slice(front.first_centre + 3 * front.n_fft, len(speech) - 3 * front.n_fft)
    for strength in (0.5, 1.0):
        matched = match_mel(front, speech, features + 1.0, strength=strength)
        assert matched.shape == speech.shape
        assert torch.equal(matched[: front.first_centre], speech[: front.first_centre])
        expected = speech[inner] * np.exp(strength / front.power)
        assert torch.allclose(matched[inner], expected, atol=1e-4), strength


def test_the_mel_match_moves_band_energies_toward_the_features_and_blocks_equal_whole():
    """Bands 15-24 asked for 4x their energy (and the rest unchanged): strength 1 brings
    the output's log-mel in those bands most of the way there, 0.5 about half of it;
    matching in short blocks gives the whole signal's samples."""
    from tokquant.audio.frontend import FrontEnd
    from tokquant.decoders.mel import match_mel

    front = _front()
    speech = torch.from_numpy(sf.read(SPEAKER[1], dtype="float32")[0])
    features = FrontEnd(front).features(speech)
    target = features.clone()
    target[:, 15:25] += np.log(4.0)
    loud = features[:, 15:25].mean(1) > features[:, 15:25].mean()  # frames above the floor
    moved = {}
    for strength in (0.5, 1.0):
        out = FrontEnd(front).features(match_mel(front, speech, target, strength))
        moved[strength] = float((out - features)[loud][:, 17:23].mean() / np.log(4.0))
    assert 0.8 < moved[1.0] < 1.1 and 0.4 < moved[0.5] < 0.6, moved
    whole = match_mel(front, speech, target, 0.5, block_frames=10_000)
    for block in (7, 37, 100):
        assert torch.allclose(match_mel(front, speech, target, 0.5, block_frames=block), whole,
                              atol=1e-5), block  # fmt: skip


def test_mel_match_is_checked_and_its_defaults_agree(trained_vocoder, logmel_rvq, tmp_path):
    import inspect

    import tokquant
    from tokquant.cli.decode import decode
    from tokquant.cli.evaluate import eval_
    from tokquant.decoders.mel import MEL_MATCH, match_mel
    from tokquant.jobs import DecodeJob, EvalJob
    from tokquant.tokenizer.model import Tokenizer

    defaults = {DecodeJob.mel_match, EvalJob.mel_match,
                inspect.signature(Tokenizer.decode_audio).parameters["mel_match"].default,
                inspect.signature(decode).parameters["mel_match"].default,
                inspect.signature(eval_).parameters["mel_match"].default}  # fmt: skip
    assert defaults == {None}  # each decoder's own default: MEL_MATCH for a trained one
    from tokquant.decoders import open_decoder

    assert (
        open_decoder(load_vocoder(trained_vocoder), tokquant.load(logmel_rvq)).mel_match
        == MEL_MATCH
    )
    tok = tokquant.load(logmel_rvq)
    codes = tok.encode_audio(sf.read(SPEAKER[0], dtype="float32")[0], 16000)
    plain = tok.decode_audio(codes, vocoder=trained_vocoder, mel_match=0.0)
    features = tok.decode(codes).numpy()
    assert torch.equal(plain, vocode(load_vocoder(trained_vocoder).vocoder, features, 200))
    assert torch.allclose(tok.decode_audio(codes, vocoder=trained_vocoder),
                          match_mel(tok.config.frontend, plain, features), atol=1e-6)  # fmt: skip
    for bad in (-0.1, 1.5, True):
        with pytest.raises(InputError, match="`mel_match` must be a number in"):
            tok.decode_audio(codes, vocoder=trained_vocoder, mel_match=bad)
    with pytest.raises(InputError, match="needs a logmel front end"):
        match_mel(_front().__class__(kind="fbank"), plain, features)
    assert run_cli("encode", logmel_rvq, SPEAKER[0], "--out", tmp_path / "t", "-q").code == 0
    res = run_cli("decode", logmel_rvq, tmp_path / "t", "--out", tmp_path / "w", "--audio",
                  "--vocoder", trained_vocoder, "--mel-match", "2")  # fmt: skip
    assert res.code == 2 and len(error_lines(res)) == 1 and not (tmp_path / "w").exists(), res.err


@pytest.fixture(scope="module")
def trained_vocoder(logmel_rvq, tmp_path_factory):
    out = tmp_path_factory.mktemp("voc") / "v.safetensors"
    res = run_cli("train-vocoder", logmel_rvq, "--data", SAMPLES / "us_m", "--out", out,
                  "--steps", "12", "--batch", "4", "-q", "--json")  # fmt: skip
    assert res.code == 0, res.err
    return out


def test_a_vocoder_file_round_trips_and_decodes_any_length(trained_vocoder, logmel_rvq, tmp_path):
    import tokquant

    tok = tokquant.load(logmel_rvq)
    loaded = load_vocoder(trained_vocoder)
    assert loaded.checkpoint_id == tok.checkpoint_id and loaded.summary["steps"] == 12
    again = tmp_path / "again.safetensors"
    save_vocoder(loaded.vocoder, again, loaded.checkpoint_id, loaded.summary)
    feats = torch.randn(1, 57, 40)
    assert torch.equal(load_vocoder(again).vocoder(feats), loaded.vocoder(feats))
    codes = tok.encode_audio(sf.read(SPEAKER[0], dtype="float32")[0], 16000)
    wave = tok.decode_audio(codes, vocoder=trained_vocoder)
    assert wave.shape == (200 + codes.shape[0] * 160,) and torch.isfinite(wave).all()
    both = tok.decode_audio([codes, codes[:20]], vocoder=loaded)
    assert torch.equal(both[0], wave) and both[1].shape == (200 + 20 * 160,)


def test_decode_cli_writes_the_apis_audio(trained_vocoder, logmel_rvq, tmp_path):
    import tokquant

    assert run_cli("encode", logmel_rvq, SPEAKER[0], "--out", tmp_path / "t", "-q").code == 0
    res = run_cli("decode", logmel_rvq, tmp_path / "t", "--out", tmp_path / "w", "--audio",
                  "--vocoder", trained_vocoder, "-q")  # fmt: skip
    assert res.code == 0, res.err
    (wav,) = (tmp_path / "w").rglob("*.wav")
    written, rate = sf.read(wav, dtype="float32")
    tok = tokquant.load(logmel_rvq)
    codes = tok.encode_audio(sf.read(SPEAKER[0], dtype="float32")[0], 16000)
    expected = tok.decode_audio(codes, vocoder=trained_vocoder).numpy()
    assert rate == 16000 and np.abs(written - np.clip(expected, -1, 1)).max() < 1 / 16384
    res = run_cli("decode", logmel_rvq, tmp_path / "t", "--out", tmp_path / "f",
                  "--vocoder", trained_vocoder)  # fmt: skip
    assert res.code == 2 and error_lines(res) == [
        "error: --vocoder decodes to audio: set --audio too"
    ]


def test_a_vocoder_of_another_tokenizer_or_a_corrupt_file_is_one_line(
    trained_vocoder, logmel_rvq, tmp_path
):
    other = tmp_path / "other.safetensors"
    loaded = load_vocoder(trained_vocoder)
    save_vocoder(loaded.vocoder, other, "f" * 64, {})
    assert run_cli("encode", logmel_rvq, SPEAKER[0], "--out", tmp_path / "t", "-q").code == 0
    decode = ["decode", logmel_rvq, tmp_path / "t", "--out", tmp_path / "w", "--audio", "--vocoder"]
    res = run_cli(*decode, other)
    assert res.code == 2 and "a vocoder for another tokenizer (checkpoint ffffffffffff" in res.err
    assert len(error_lines(res)) == 1
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(trained_vocoder.read_bytes()[:5000])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    for bad in (broken, garbage, tmp_path / "missing.safetensors"):
        res = run_cli(*decode, bad)
        assert res.code == 2 and len(error_lines(res)) == 1, res.err
        assert "Traceback" not in res.err
    with pytest.raises(FormatError):
        load_vocoder(broken)
    import tokquant

    tok = tokquant.load(logmel_rvq)
    wrong_rate = Vocoder(VocoderConfig(40, 160, 24000, dim=8, intermediate=8, layers=1))
    save_vocoder(wrong_rate, tmp_path / "r.safetensors", tok.checkpoint_id)
    with pytest.raises(InputError, match="decodes 24000 Hz audio"):
        open_decoder(tmp_path / "r.safetensors", tok)


def test_an_interrupted_training_resumes_to_the_same_weights(logmel_rvq, tmp_path):
    from tokquant.jobs import TrainVocoderJob

    def job(out):
        return TrainVocoderJob(logmel_rvq, [SPEAKER[0]], out, steps=8, batch=2, segment_frames=16)  # fmt: skip

    job(tmp_path / "whole.safetensors").run()

    class StopAt:
        count = 0

        def start(self, label, total):
            pass

        def advance(self, n=1):
            self.count += n if n else 0

        def update(self, step, metrics):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job(tmp_path / "resumed.safetensors").run(StopAt())
    state = tmp_path / "resumed.safetensors.state"
    assert state.is_file() and not (tmp_path / "resumed.safetensors").exists()
    job(tmp_path / "resumed.safetensors").run()
    assert not state.exists()
    whole, resumed = (load_vocoder(tmp_path / f"{n}.safetensors").vocoder.state_dict()
                      for n in ("whole", "resumed"))  # fmt: skip
    for name, tensor in whole.items():
        assert torch.equal(tensor, resumed[name]), name


def test_train_vocoder_refuses_a_feature_tokenizer_and_bad_settings(trained, corpus, tmp_path):
    res = run_cli("train-vocoder", trained, "--data", corpus, "--out", tmp_path / "v.safetensors")
    assert res.code == 2 and "reads feature files" in res.err and len(error_lines(res)) == 1
    res = run_cli("train-vocoder", trained, "--data", corpus, "--out", tmp_path / "v.safetensors",
                  "--steps", "0")  # fmt: skip
    assert res.code == 2 and error_lines(res) == [
        "error: --steps must be an integer in [1, 100,000,000], found 0"
    ]


def test_an_ssl_unit_vocoder_beats_silence_and_noise(tmp_path, tmp_path_factory):
    """A 2-layer HuBERT-unit tokenizer has no Griffin-Lim; its trained decoder's audio is
    nearer the speech, in mel distance, than silence or noise of the speech's loudness."""
    import tokquant
    from tests.test_ssl import _random_weights, _ssl_config

    weights = _random_weights(tmp_path / "hubert.safetensors", "HUBERT_BASE", 0)
    data = tmp_path / "data"
    data.mkdir()
    for f in SPEAKER[:3]:
        (data / f.name).write_bytes(f.read_bytes())
    ckpt = tmp_path / "units.safetensors"
    res = run_cli("train", "-c", _ssl_config(tmp_path, weights), "-d", data, "-o", ckpt, "-q")
    assert res.code == 0, res.err
    out = tmp_path / "units.vocoder.safetensors"
    res = run_cli("train-vocoder", ckpt, "--data", data, "--out", out, "--steps", "80",
                  "--batch", "8", "--speed", "1", "-q")  # fmt: skip
    assert res.code == 0, res.err
    tok = tokquant.load(ckpt)
    held = sorted((SAMPLES / "gb_f").glob("*.flac"))[0]  # a voice it never heard
    speech = sf.read(held, dtype="float32")[0]
    decoded = tok.decode_audio(tok.encode_audio(speech, 16000), vocoder=out).numpy()
    n = min(len(speech), len(decoded))
    ref = at_16k(speech[:n], 16000)
    noise = np.random.default_rng(0).standard_normal(n) * speech.std()
    ours = mel_distance(ref, at_16k(decoded[:n], 16000))
    assert ours < mel_distance(ref, np.zeros(n)) and ours < mel_distance(ref, noise), ours


def test_torchrun_trains_one_vocoder_over_two_ranks(logmel_rvq, tmp_path):
    """Two gloo ranks draw their own segments, average gradients, and rank 0 writes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this python")
    out = tmp_path / "ddp.vocoder.safetensors"
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", "29533", "-m", "tokquant", "train-vocoder", str(logmel_rvq),
           "--data", str(SPEAKER[0]), "--out", str(out), "--steps", "4", "--batch", "2",
           "--json"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count('"vocoder_id"') == 1  # rank 0 alone reports and writes
    assert load_vocoder(out).summary["steps"] == 4


def test_adversarial_training_runs_and_its_discriminators_resume(logmel_rvq, tmp_path):
    from tokquant.jobs import TrainVocoderJob

    out = tmp_path / "adv.safetensors"
    report = TrainVocoderJob(logmel_rvq, [SPEAKER[0]], out, steps=3, batch=2, segment_frames=16,
                             adversarial=True).run()  # fmt: skip
    assert {"final_adv", "final_fm", "final_disc"} <= set(report.summary)
    assert all(np.isfinite(v) for k, v in report.summary.items() if k.startswith("final_"))


def test_speed_perturbation_moves_pitch_and_length_by_the_factor():
    from tokquant.decoders.trained.training import perturbed

    rate, f0 = 16000, 200.0
    wave = np.sin(2 * np.pi * f0 * np.arange(rate) / rate).astype(np.float32)
    assert perturbed(wave, rate, 1.0) is wave
    for speed in (0.85, 1.16):
        out = perturbed(wave, rate, speed)
        assert abs(len(out) - rate / speed) <= 1
        spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
        peak = np.argmax(spectrum) * rate / len(out)
        assert peak == pytest.approx(f0 * speed, abs=rate / len(out))
