"""Audio in and out: reading, resampling, front ends, streaming identity, bad audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml

from tests.conftest import encode_file, run_cli
from tokquant.api import load
from tokquant.audio.frontend import BLOCK_FRAMES, AudioSource, FrontEnd, audio_features
from tokquant.audio.io import AudioReader
from tokquant.decoders.mel import to_audio
from tokquant.errors import InputError
from tokquant.formats.tokens import read_tokens
from tokquant.tokenizer.checkpoint import load_checkpoint
from tokquant.tokenizer.config import FrontendConfig, TokenizerConfig

SAMPLES = Path(__file__).parent.parent / "scripts" / "sample_data" / "audio"
KINDS = ["logmel", "fbank", "mfcc"]


def write(path: Path, audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, subtype=subtype)
    return path


def speechlike(seconds: float, rate: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Harmonic tones with a moving pitch plus noise: structured, not silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = []
    for c in range(channels):
        f0 = 120 + 60 * np.sin(2 * np.pi * (0.3 + 0.1 * c) * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (
            0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)
        )
        out.append(0.2 * x + 0.01 * rng.standard_normal(t.size))
    return np.stack(out, axis=1).astype(np.float32) if channels > 1 else out[0].astype(np.float32)


def logmel_config(tmp_path: Path, family: str = "bsq", kind: str = "logmel") -> Path:
    quantizer = {"bsq": {"family": "bsq", "code_dim": 10},
                 "rvq": {"family": "rvq", "num_levels": 3, "num_embeddings": 32}}[family]  # fmt: skip
    config = {
        "frontend": {"kind": kind, "n_mels": 40, "n_mfcc": 13},
        "quantizer": quantizer,
        "projection": {"kind": "none" if family == "rvq" else "linear"},
        "train": {"steps": 30, "batch_frames": 256, "eval_every": 10, "kmeans_iters": 3},
    }
    path = tmp_path / f"{family}-{kind}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def audio_ckpts(tmp_path_factory) -> dict[str, Path]:
    """A small BSQ and RVQ log-mel tokenizer trained on part of the bundled corpus."""
    root = tmp_path_factory.mktemp("audio_ckpt")
    out = {}
    for family in ("bsq", "rvq"):
        ckpt = root / f"{family}.safetensors"
        res = run_cli("train", "-c", logmel_config(root, family), "-d", SAMPLES / "us_m",
                      SAMPLES / "gb_f", "-o", ckpt)  # fmt: skip
        assert res.code == 0, res.err
        out[family] = ckpt
    return out


# ---------------------------------------------------------------- reading and resampling


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_resampling_keeps_a_sines_frequency(tmp_path, rate):
    freq = 1234.0
    t = np.arange(rate * 2) / rate
    path = write(
        tmp_path / "sine.wav",
        (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32),
        rate,
        "FLOAT",
    )
    with AudioReader(path) as reader:
        source = AudioSource(reader, 16000, None)
        y = source.read(0, source.num_samples).numpy()
    assert source.num_samples == -(-rate * 2 * 16000 // rate)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak = np.argmax(spectrum) * 16000 / y.size
    assert abs(peak - freq) < 16000 / y.size  # within one bin
    assert 0.3 < np.abs(y).max() < 0.6


def test_ranged_resampled_reads_equal_whole_resample(tmp_path):
    x = speechlike(3.0, 44100)
    path = write(tmp_path / "x.wav", x, 44100, "FLOAT")
    whole = torchaudio.functional.resample(torch.from_numpy(x), 44100, 16000)
    with AudioReader(path) as reader:
        source = AudioSource(reader, 16000, None)
        for start, stop in [
            (0, 10),
            (1000, 4000),
            (whole.numel() - 300, whole.numel()),
            (777, 778),
        ]:
            assert torch.allclose(source.read(start, stop), whole[start:stop], atol=2e-7, rtol=0)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_sample_formats_read_as_the_same_signal(tmp_path, subtype):
    x = speechlike(1.0, 16000)
    with AudioReader(write(tmp_path / "x.wav", x, 16000, subtype)) as reader:
        y = reader.read(0, reader.num_samples)[:, 0]
    assert np.abs(y - x).max() < (2.0**-15 if subtype == "PCM_16" else 1e-6)


def test_flac_and_ogg_are_read(tmp_path):
    x = speechlike(1.0, 16000)
    for name, subtype in (("x.flac", "PCM_16"), ("x.ogg", "VORBIS")):
        path = write(tmp_path / name, x, 16000, subtype)
        with AudioReader(path) as reader:
            assert reader.sample_rate == 16000 and abs(reader.num_samples - 16000) <= 1


# ---------------------------------------------------------------- front ends


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("length", [400, 559, 560, 561, 16000, 16123])
def test_frame_count_follows_the_documented_formula(kind, length):
    fe = FrontEnd(FrontendConfig(kind=kind))
    feats = fe.features(torch.from_numpy(speechlike(length / 16000, 16000)[:length].copy()))
    assert feats.shape == (1 + (length - 400) // 160, 13 if kind == "mfcc" else 80)
    assert fe.num_frames(length) == feats.shape[0] and fe.num_frames(399) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_window_shorter_than_the_fft_frames_and_streams_as_documented(tmp_path, kind):
    """n_fft 512, win_length 400: torch frames n_fft samples (the window centred in them),
    Kaldi win_length; either way the formula, and so streaming, agrees with the front end."""
    config = FrontendConfig(kind=kind, n_fft=512, win_length=400)
    fe = FrontEnd(config)
    assert config.frame_length == (400 if kind == "fbank" else 512)
    path = write(tmp_path / "x.wav", speechlike(3.1, 16000), 16000, "PCM_16")
    whole = audio_features(path, fe, chunk_frames=None)
    y = torch.from_numpy(sf.read(str(path), dtype="float32")[0])
    assert whole.shape[0] == fe.num_frames(len(y)) == fe.features(y).shape[0]
    assert whole.shape[0] == 1 + (len(y) - config.frame_length) // 160
    assert np.array_equal(audio_features(path, fe, chunk_frames=100), whole)


@pytest.mark.parametrize("kind", KINDS)
def test_front_ends_match_torchaudio_references(kind):
    wave = torch.from_numpy(speechlike(1.0, 16000))
    fe = FrontEnd(FrontendConfig(kind=kind))
    got = fe.features(wave)
    if kind == "fbank":
        import torchaudio.compliance.kaldi as kaldi

        ref = kaldi.fbank(
            wave[None] * 32768, num_mel_bins=80, dither=0.0, sample_frequency=16000, low_freq=0.0
        )  # our f_min (Kaldi defaults to 20 Hz)
    else:
        mel = torchaudio.transforms.MelSpectrogram(
            16000, n_fft=400, hop_length=160, n_mels=80, center=False
        )
        ref = mel(wave).clamp(min=1e-5).log().T
        if kind == "mfcc":
            ref = ref @ torchaudio.functional.create_dct(13, 80, "ortho")
    assert torch.allclose(got, ref, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rate", [16000, 22050])
def test_chunked_features_are_bitwise_equal_to_whole_file(tmp_path, kind, rate):
    path = write(tmp_path / "x.wav", speechlike(7.3, rate, channels=2), rate, "PCM_24")
    fe = FrontEnd(FrontendConfig(kind=kind))
    whole = audio_features(path, fe, chunk_frames=None)
    assert whole.shape[0] == fe.num_frames(-(-int(7.3 * rate) * 16000 // rate))
    for chunk in (1, 300, 517):  # none divides the 729/730 frames
        assert np.array_equal(audio_features(path, fe, chunk_frames=chunk), whole)
    # and they agree with the front end run on the whole resampled signal
    y, _ = sf.read(str(path), dtype="float32", always_2d=True)
    w = (
        torchaudio.functional.resample(torch.from_numpy(y.mean(1)), rate, 16000)
        if rate != 16000
        else torch.from_numpy(y.mean(1))
    )
    assert np.allclose(fe.features(w).numpy(), whole, atol=2e-3)


def test_streaming_reads_only_a_chunk_at_a_time(tmp_path, monkeypatch):
    path = write(tmp_path / "x.wav", speechlike(20.0, 44100), 44100)
    sizes = []
    original = AudioReader.read

    def spy(self, start, stop):
        sizes.append(stop - start)
        return original(self, start, stop)

    monkeypatch.setattr(AudioReader, "read", spy)
    fe = FrontEnd(FrontendConfig(kind="logmel"))
    feats = audio_features(path, fe, chunk_frames=256)
    assert feats.shape[0] == 1998
    block_in_samples = (BLOCK_FRAMES * 160 + 400) * 44100 / 16000
    assert max(sizes) < block_in_samples + 2 * 1000  # one block plus the resampler margin
    assert sum(sizes) < 1.3 * 20 * 44100


# ---------------------------------------------------------------- tokens from audio


@pytest.mark.parametrize("family", ["bsq", "rvq"])
def test_chunked_encode_gives_the_same_tokens_as_whole_file(tmp_path, audio_ckpts, family):
    ckpt = load(audio_ckpts[family])
    path = write(tmp_path / "long.flac", speechlike(11.7, 22050, channels=2), 22050)
    whole = encode_file(ckpt, path, tmp_path / "whole.tokens.safetensors", chunk_frames=None)
    assert whole.shape[0] == 1 + (-(-int(11.7 * 22050) * 16000 // 22050) - 400) // 160
    for chunk in (1, 333, 1000):
        codes = encode_file(
            ckpt, path, tmp_path / f"c{chunk}.tokens.safetensors", chunk_frames=chunk
        )
        assert np.array_equal(codes, whole)
    assert (tmp_path / "c333.tokens.safetensors").read_bytes() == (
        tmp_path / "whole.tokens.safetensors"
    ).read_bytes()


def test_channels_mix_and_split(tmp_path, audio_ckpts):
    ckpt = audio_ckpts["bsq"]
    stereo = speechlike(2.0, 16000, channels=2)
    write(tmp_path / "in" / "st.wav", stereo, 16000, "FLOAT")
    write(tmp_path / "mono" / "left.wav", stereo[:, 0].copy(), 16000, "FLOAT")
    write(tmp_path / "mono" / "mixed.wav", stereo.mean(1), 16000, "FLOAT")
    assert (
        run_cli(
            "encode", ckpt, tmp_path / "in", "--out", tmp_path / "split", "--channels", "split"
        ).code
        == 0
    )
    assert run_cli("encode", ckpt, tmp_path / "in", "--out", tmp_path / "mix").code == 0
    assert run_cli("encode", ckpt, tmp_path / "mono", "--out", tmp_path / "ref").code == 0
    ch0 = read_tokens(tmp_path / "split" / "st.ch0.tokens.safetensors")
    ch1 = read_tokens(tmp_path / "split" / "st.ch1.tokens.safetensors")
    assert ch0.channel == 0 and ch1.channel == 1
    assert np.array_equal(
        ch0.codes, read_tokens(tmp_path / "ref" / "left.tokens.safetensors").codes
    )
    assert not np.array_equal(ch0.codes, ch1.codes)
    mix = read_tokens(tmp_path / "mix" / "st.tokens.safetensors")
    assert mix.channel is None
    assert np.array_equal(
        mix.codes, read_tokens(tmp_path / "ref" / "mixed.tokens.safetensors").codes
    )


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000])
def test_any_rate_encodes_to_the_frame_rate_of_the_checkpoint(tmp_path, audio_ckpts, rate):
    write(tmp_path / "x.wav", speechlike(1.5, rate), rate)
    assert (
        run_cli("encode", audio_ckpts["bsq"], tmp_path / "x.wav", "--out", tmp_path / "o").code == 0
    )
    tok = read_tokens(tmp_path / "o" / "x.tokens.safetensors")
    assert tok.frame_rate == 100.0
    assert tok.num_frames == 1 + (-(-int(1.5 * rate) * 16000 // rate) - 400) // 160


def test_decode_audio_writes_a_wav_whose_log_mels_match(tmp_path, audio_ckpts):
    ckpt = audio_ckpts["rvq"]
    src = SAMPLES / "us_m" / "utt01.flac"
    assert run_cli("encode", ckpt, src, "--out", tmp_path / "tok").code == 0
    assert run_cli("decode", ckpt, tmp_path / "tok", "--out", tmp_path / "wav", "--audio").code == 0
    out = tmp_path / "wav" / "utt01.wav"
    info = sf.info(str(out))
    frames = read_tokens(tmp_path / "tok" / "utt01.tokens.safetensors").num_frames
    assert info.samplerate == 16000 and info.subtype == "PCM_16"
    assert abs(info.frames - ((frames - 1) * 160 + 400)) <= 400
    # re-analyse the Griffin-Lim audio: its log-mels follow the decoded ones, aligned
    model = load_checkpoint(ckpt)
    decoded = model.tokenizer.decode(
        torch.from_numpy(read_tokens(tmp_path / "tok" / "utt01.tokens.safetensors").codes)
    )
    fe = FrontEnd(model.tokenizer.config.frontend)
    y, _ = sf.read(str(out), dtype="float32")
    again = fe.features(torch.from_numpy(y))
    n = min(len(again), len(decoded))
    corr = np.corrcoef(again[:n].flatten().numpy(), decoded[:n].flatten().numpy())[0, 1]
    assert corr > 0.8
    shifted = np.corrcoef(again[5:n].flatten().numpy(), decoded[: n - 5].flatten().numpy())[0, 1]
    assert corr > shifted  # aligned, not off by frames


def test_decode_audio_refused_without_an_invertible_front_end(tmp_path, trained, corpus):
    run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path)
    res = run_cli("decode", trained, tmp_path, "--out", tmp_path / "o", "--audio")
    assert res.code == 2 and "--audio needs a checkpoint with an audio front end" in res.err
    fe = FrontEnd(FrontendConfig(kind="mfcc"))
    with pytest.raises(InputError, match="needs a logmel or fbank front end"):
        to_audio(fe.config, np.zeros((10, 13), np.float32))


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_other_front_ends_train_and_encode(tmp_path, kind):
    ckpt = tmp_path / "m.safetensors"
    res = run_cli("train", "-c", logmel_config(tmp_path, "bsq", kind), "-d", SAMPLES / "sc_m", "-o", ckpt,
                  "--steps", "5")  # fmt: skip
    assert res.code == 0, res.err
    assert run_cli("encode", ckpt, SAMPLES / "sc_m", "--out", tmp_path / "t").code == 0
    dims = json.loads(run_cli("info", ckpt, "--json").out)["config"]["features"]["dim"]
    assert dims == (13 if kind == "mfcc" else 40)


def test_stats_on_audio_reports_feature_domain_error(tmp_path, audio_ckpts):
    ckpt = audio_ckpts["bsq"]
    run_cli("encode", ckpt, SAMPLES / "us_m", "--out", tmp_path / "tok")
    res = run_cli("stats", ckpt, tmp_path / "tok", "--features", SAMPLES / "us_m", "--json")
    assert res.code == 0, res.err
    rec = json.loads(res.out)["reconstruction"]
    model = load_checkpoint(ckpt)
    fe = FrontEnd(model.tokenizer.config.frontend)
    ref, est = [], []
    for path in sorted((SAMPLES / "us_m").glob("*.flac")):
        feats = audio_features(path, fe)
        ref.append(feats)
        est.append(model.tokenizer.decode(model.tokenizer.encode(torch.from_numpy(feats))).numpy())
    ref, est = np.concatenate(ref).astype(np.float64), np.concatenate(est).astype(np.float64)
    assert rec["frames"] == len(ref)
    assert rec["mse"] == pytest.approx(((ref - est) ** 2).mean(), rel=1e-5)


# ---------------------------------------------------------------- bad audio


def test_each_bad_audio_file_fails_alone(tmp_path, audio_ckpts):
    bad = tmp_path / "in"
    write(bad / "good.wav", speechlike(1.0, 16000), 16000)
    (bad / "empty.wav").write_bytes(b"")
    write(bad / "zero.wav", np.zeros(0, np.float32), 16000)
    header = (bad / "good.wav").read_bytes()
    (bad / "corrupt.wav").write_bytes(b"RIFX" + header[4:12] + b"garbage!" * 8 + header[76:])
    (bad / "text.wav").write_text("this is not audio at all\n" * 20)
    nan = speechlike(1.0, 16000)
    nan[5000] = np.nan
    write(bad / "nan.wav", nan, 16000, "FLOAT")
    write(bad / "short.wav", np.zeros(300, np.float32), 16000)
    truncated = (bad / "good.wav").read_bytes()
    (bad / "truncated.wav").write_bytes(truncated[: len(truncated) // 3])
    res = run_cli("encode", audio_ckpts["bsq"], bad, "--out", tmp_path / "tok")
    assert res.code == 1
    assert "Traceback" not in res.err
    expected = {
        "empty.wav": "empty file (0 bytes)",
        "zero.wav": "audio has no samples",
        "corrupt.wav": "not readable audio",
        "text.wav": "not readable audio",
        "nan.wav": "NaN or Inf in audio, first at sample 5000",
        "short.wav": "audio is shorter than one frame (300 samples at 16000 Hz",
    }
    lines = [line for line in res.err.splitlines() if line.startswith("error:")]
    for name, message in expected.items():
        assert any(name in line and message in line for line in lines), (name, res.err)
    made = sorted(p.name for p in (tmp_path / "tok").glob("*"))
    # the good file, and the truncated one, whose header still describes readable audio
    assert "good.tokens.safetensors" in made
    assert not any(n.startswith(("empty", "zero", "corrupt", "text", "nan", "short")) for n in made)
    assert not any(n.startswith(".") for n in made)


def test_frontend_config_is_validated():
    with pytest.raises(Exception, match="frontend.kind: must be one of"):
        TokenizerConfig.from_dict({"frontend": {"kind": "wav2vec"}})
    with pytest.raises(Exception, match="frontend.win_length"):
        TokenizerConfig.from_dict({"frontend": {"kind": "logmel", "n_fft": 256, "win_length": 400}})
    with pytest.raises(Exception, match="features.dim: 12 conflicts with the logmel front end"):
        TokenizerConfig.from_dict({"frontend": {"kind": "logmel"}, "features": {"dim": 12}})


# ---------------------------------------------------------------- audit


@pytest.mark.parametrize("family", ["bsq", "rvq"])
def test_audit_says_log_mel_codes_never_depend_on_batching_or_chunking(audio_ckpts, tmp_path,
                                                                         family):  # fmt: skip
    mixed = tmp_path / "mixed"
    write(mixed / "a.wav", speechlike(2.5, 16000, seed=1), 16000)
    write(mixed / "b.flac", speechlike(3.3, 44100, seed=2, channels=2), 44100)
    write(mixed / "c.wav", speechlike(1.2, 22050, seed=3), 22050)
    res = run_cli("audit", audio_ckpts[family], mixed, "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert len(report["inputs"]) == 3
    assert report["overall"] == {"batched": 1.0, "chunked": 1.0}


def test_audit_reports_codes_that_do_change(audio_ckpts, tmp_path, monkeypatch):
    """The audit's arithmetic: one changed frame in the batched codes of a 2-file run."""
    from tokquant.runners import audit as audit_job

    real = audit_job.encode_items

    def one_flipped(checkpoint, items, **kw):
        for i, enc in enumerate(real(checkpoint, items, **kw)):
            if i == 0:
                enc.codes = enc.codes.copy()
                enc.codes[3, 0] += 1
            yield enc

    monkeypatch.setattr(audit_job, "encode_items", one_flipped)
    write(tmp_path / "a.wav", speechlike(1.0, 16000), 16000)
    write(tmp_path / "b.wav", speechlike(1.0, 16000, seed=4), 16000)
    report = json.loads(run_cli("audit", audio_ckpts["rvq"], tmp_path, "--json").out)
    frames = report["inputs"][0]["frames"]
    assert report["inputs"][0]["batched"] == pytest.approx(1 - 1 / frames)
    assert report["inputs"][1]["batched"] == 1.0 and report["inputs"][0]["chunked"] == 1.0
