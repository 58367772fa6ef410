"""``tokquant.load(ckpt).encode_audio``: waveforms in any dtype, rate and channel count give
the codes ``tokquant encode`` writes for the same audio, alone, batched, and inside a
DataLoader; bad input is one ``ValueError`` (issue 24, its waveform API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import tokquant
from tests.conftest import SAMPLES, run_cli, train_logmel
from tokquant.formats.tokens import read_tokens


@pytest.fixture(scope="module", params=["bsq", "rvq"])
def ckpt(request, tmp_path_factory) -> Path:
    bsq = request.param == "bsq"
    quantizer = (
        "family: bsq, code_dim: 10" if bsq else "family: rvq, num_levels: 3, num_embeddings: 32"
    )
    return train_logmel(tmp_path_factory.mktemp("load"), quantizer,
                        train="steps: 20, batch_frames: 256, kmeans_iters: 3",
                        projection="linear" if bsq else "none")  # fmt: skip


def _speech(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A bundled utterance resampled by index (any rate, plausibly speech-like)."""
    wave, source_rate = sf.read(SAMPLES / "gb_f" / f"utt0{seed % 6}.flac", dtype="float64")
    t = np.arange(int(seconds * rate)) * source_rate / rate
    return np.interp(t, np.arange(wave.size), wave) * 0.8


def test_waveforms_of_every_kind_give_the_clis_token_files(tmp_path, ckpt):
    folder = tmp_path / "in"
    folder.mkdir()
    cases = {
        "r8k_int16": (8000, (_speech(1.3, 8000, 0) * 32767).astype(np.int16), "PCM_16"),
        "r16k_float64": (16000, _speech(2.1, 16000, 1), "DOUBLE"),
        "r44k_stereo": (44100, np.stack([_speech(1.7, 44100, 2), _speech(1.7, 44100, 3)]),
                        "FLOAT"),
        "r16k_int32": (16000, (_speech(0.9, 16000, 4) * 2**31 * 0.9).astype(np.int32), "PCM_32"),
    }  # fmt: skip
    for name, (rate, wave, subtype) in cases.items():
        sf.write(folder / f"{name}.wav", wave.T if wave.ndim == 2 else wave, rate, subtype=subtype)
    assert run_cli("encode", ckpt, folder, "--out", tmp_path / "tok").code == 0
    tok = tokquant.load(ckpt)
    assert (
        tok.checkpoint_id
        == read_tokens(tmp_path / "tok" / "r8k_int16.tokens.safetensors").checkpoint_id
    )
    for name, (rate, wave, _) in cases.items():
        want = read_tokens(tmp_path / "tok" / f"{name}.tokens.safetensors").codes
        got = tok.encode_audio(wave, rate)
        assert got.dtype == torch.int64 and got.device == tok.device
        np.testing.assert_array_equal(got.numpy(), want, err_msg=name)
        tensor = tok.encode_audio(torch.from_numpy(np.ascontiguousarray(wave)), rate)
        np.testing.assert_array_equal(tensor.numpy(), want, err_msg=f"{name} as a tensor")


def test_a_list_of_ten_waveforms_equals_each_alone(ckpt):
    tok = tokquant.load(ckpt)
    waves = [_speech(0.3 + 0.37 * i, 16000, i).astype(np.float32) for i in range(10)]
    alone = [tok.encode_audio(w, 16000) for w in waves]
    for batch_frames in (1, 300, 1 << 16):  # every pack: one per batch, a few, all at once
        together = tok.encode_audio(waves, 16000, batch_frames=batch_frames)
        assert len(together) == 10
        for a, b in zip(alone, together, strict=True):
            assert torch.equal(a, b)
    assert [c.shape[0] for c in alone] == [1 + (w.size - 400) // 160 for w in waves]


def test_encode_audio_in_a_dataloader_collate_with_two_workers(ckpt):
    tok = tokquant.load(ckpt)
    waves = [_speech(0.5 + 0.2 * i, 16000, i).astype(np.float32) for i in range(8)]
    want = [tok.encode_audio(w, 16000) for w in waves]

    def collate(batch):
        return tok.encode_audio([w for w, _ in batch], 16000), [i for _, i in batch]

    loader = torch.utils.data.DataLoader([(w, i) for i, w in enumerate(waves)], batch_size=3,
                                         num_workers=2, collate_fn=collate)  # fmt: skip
    seen = 0
    for codes, index in loader:
        for c, i in zip(codes, index, strict=True):
            assert torch.equal(c, want[i])
            seen += 1
    assert seen == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_encode_audio_on_cuda_equals_cpu(ckpt):
    wave = _speech(2.0, 22050, 5)
    cpu = tokquant.load(ckpt).encode_audio(wave, 22050)
    cuda = tokquant.load(ckpt, device="cuda").encode_audio(wave, 22050)
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)


@pytest.mark.parametrize(
    ("wave", "rate", "message"),
    [
        (np.zeros((2, 3, 400), np.float32), 16000, r"must be \[N\] or \[channels, N\]. Found shape \[2, 3, 400\]"),
        (np.zeros(0, np.float32), 16000, "is empty"),
        (np.r_[np.zeros(500), np.nan, np.zeros(500)], 16000, "NaN or Inf, first at sample 500"),
        (np.zeros(4000, np.float32), 16000.0, "sample_rate must be an int"),
        (np.zeros(4000, np.float32), "16000", "sample_rate must be an int"),
        (np.zeros(4000, np.float32), 0, r"sample_rate must be in \[1"),
        (np.zeros(4000, bool), 16000, "float or integer PCM"),
        (np.zeros(100, np.float32), 16000, "shorter than one frame"),
    ],
)  # fmt: skip
def test_bad_waveforms_raise_one_value_error(ckpt, wave, rate, message):
    tok = tokquant.load(ckpt)
    with pytest.raises(ValueError, match=message):
        tok.encode_audio(wave, rate)


def test_decode_audio_and_where_it_is_refused(ckpt, trained):
    tok = tokquant.load(ckpt)
    codes = tok.encode_audio(_speech(1.0, 16000, 0), 16000)
    wave = tok.decode_audio(codes)
    assert wave.ndim == 1 and abs(wave.shape[0] - 16000) <= 400 and torch.isfinite(wave).all()
    features = tokquant.load(trained)
    with pytest.raises(ValueError, match="decode_audio needs an audio front end"):
        features.decode_audio(torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="reads features, not audio"):
        features.encode_audio(np.zeros(4000, np.float32), 16000)
