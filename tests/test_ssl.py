"""The SSL front end (HuBERT / WavLM layers) on torchaudio's real architectures with seeded
random weights: no network, here or in CI."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from tests.conftest import encode_file, run_cli
from tests.test_hostile import error_lines
from tokquant.api import load
from tokquant.audio.frontend import build_frontend, stream_features
from tokquant.audio.ssl import architecture, num_frames, weights_digest
from tokquant.runners.features import FeatureReader
from tokquant.runners.frames import FrameSample, load_frames
from tokquant.sources import FileSource
from tokquant.tokenizer.checkpoint import load_checkpoint
from tokquant.tokenizer.config import FrontendConfig, TokenizerConfig


def _random_weights(path: Path, model: str, seed: int) -> Path:
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in architecture(model).build().state_dict().items()}
    save_file(state, str(path))
    return path


@pytest.fixture(scope="session")
def hubert(tmp_path_factory) -> Path:
    return _random_weights(tmp_path_factory.mktemp("ssl") / "hubert.safetensors", "HUBERT_BASE", 0)


def _wave(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def _frontend(weights: Path, model: str = "HUBERT_BASE", **kw) -> FrontendConfig:
    cfg = FrontendConfig(kind="ssl", model=model, weights=str(weights), **kw)
    cfg.validate()
    return cfg


def _reference(
    weights: Path, model: str, wave: np.ndarray, layers: list[int]
) -> list[torch.Tensor]:
    """torchaudio's own extract_features, on the same weights."""
    arch = architecture(model)
    net = arch.build().eval()
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(weights)))
    x = torch.from_numpy(wave).unsqueeze(0)
    if arch.normalize_waveform:
        x = torch.nn.functional.layer_norm(x, x.shape)
    with torch.no_grad():
        outs, _ = net.extract_features(x, num_layers=max(layers))
    return [outs[layer - 1][0] for layer in layers]


@pytest.mark.parametrize("merge", ["mean", "concat"])
def test_layer_features_equal_torchaudio_extract_features(hubert, merge):
    wave = _wave(2.3)
    fe = build_frontend(_frontend(hubert, layers=[1, 3], layer_merge=merge))
    ours = fe.features(torch.from_numpy(wave))
    ref = _reference(hubert, "HUBERT_BASE", wave, [1, 3])
    want = torch.stack(ref).mean(0) if merge == "mean" else torch.cat(ref, -1)
    assert ours.shape == (num_frames(wave.size), 768 * (2 if merge == "concat" else 1))
    assert torch.equal(ours, want)


def test_wavlm_layer_features_equal_torchaudio(tmp_path):
    weights = _random_weights(tmp_path / "wavlm.safetensors", "WAVLM_BASE_PLUS", 1)
    wave = _wave(1.7, seed=1)
    fe = build_frontend(_frontend(weights, "WAVLM_BASE_PLUS", layers=[2]))
    assert torch.equal(fe.features(torch.from_numpy(wave)),
                       _reference(weights, "WAVLM_BASE_PLUS", wave, [2])[0])  # fmt: skip


@pytest.mark.parametrize("samples", [400, 719, 720, 16000, 16399, 16400])
def test_frame_counts_follow_the_conv_stack(hubert, tmp_path, samples):
    fe = build_frontend(_frontend(hubert, layers=[1]))
    path = tmp_path / "x.wav"
    sf.write(str(path), _wave(1.1)[:samples], 16000)
    feats = np.concatenate(list(stream_features(path, fe)))
    assert feats.shape[0] == num_frames(samples) == 1 + (samples - 400) // 320


def test_windows_with_context_are_cropped_and_chunking_changes_nothing(hubert, tmp_path):
    wave = _wave(5.3, seed=2)
    path = tmp_path / "long.wav"
    sf.write(str(path), wave, 16000, subtype="FLOAT")  # the samples the reference sees
    cfg = _frontend(hubert, layers=[2], window_seconds=2.0, context_seconds=0.4)
    fe = build_frontend(cfg)
    whole = np.concatenate(list(stream_features(path, fe, chunk_frames=None)))
    total = num_frames(wave.size)
    assert whole.shape[0] == total
    # By hand: window k owns frames [100k, 100k+100) and sees 20 frames of context a side.
    expected = []
    for f0 in range(0, total, 100):
        f1 = min(total, f0 + 100)
        i0, i1 = max(0, f0 - 20), min(total, f1 + 20)
        ref = _reference(hubert, "HUBERT_BASE", wave[i0 * 320 : (i1 - 1) * 320 + 400], [2])[0]
        expected.append(ref[f0 - i0 : f1 - i0].numpy())
    assert np.array_equal(whole, np.concatenate(expected))
    for chunk in (1, 90, 150, 1000):
        chunks = list(stream_features(path, fe, chunk_frames=chunk))
        assert np.array_equal(np.concatenate(chunks), whole)


def _ssl_config(tmp_path: Path, weights: Path | None, **frontend) -> Path:
    fe = {"kind": "ssl", "model": "HUBERT_BASE", "layers": [2], "window_seconds": 2.0,
          "context_seconds": 0.4, "weights": None if weights is None else str(weights),
          **frontend}  # fmt: skip
    config = {"frontend": fe, "quantizer": {"family": "rvq", "num_levels": 1, "num_embeddings": 16},
              "projection": {"kind": "none"}, "train": {"steps": 0, "kmeans_iters": 4}}  # fmt: skip
    path = tmp_path / "ssl.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def ssl_setup(tmp_path_factory, hubert):
    root = tmp_path_factory.mktemp("ssl-data")
    data = root / "data"
    data.mkdir()
    sf.write(str(data / "a.wav"), _wave(3.1, seed=3), 16000)
    sf.write(str(data / "b ü.flac"), np.stack([_wave(2.2, 44100, 4)] * 2, 1), 44100)
    sf.write(str(data / "c.wav"), _wave(4.7, 22050, 5), 22050)
    ckpt = root / "km.safetensors"
    res = run_cli("train", "-c", _ssl_config(root, hubert), "-d", data, "-o", ckpt, "-q")
    assert res.code == 0, res.err
    return root, data, ckpt


def test_ssl_codes_alone_batched_and_chunked_are_byte_identical(ssl_setup, tmp_path):
    root, data, ckpt = ssl_setup
    assert run_cli("encode", ckpt, data, "--out", tmp_path / "batch", "-q").code == 0
    checkpoint = load(ckpt)
    for name in ("a.wav", "b ü.flac", "c.wav"):
        stem = name.rsplit(".", 1)[0]
        alone = tmp_path / "alone"
        assert run_cli("encode", ckpt, data / name, "--out", alone, "-q").code == 0
        batched = (tmp_path / "batch" / f"{stem}.tokens.safetensors").read_bytes()
        assert (alone / f"{stem}.tokens.safetensors").read_bytes() == batched
        chunked, whole = tmp_path / "chunked.tokens.safetensors", tmp_path / "w.tokens.safetensors"
        codes = encode_file(checkpoint, data / name, chunked, chunk_frames=30)
        assert np.array_equal(codes, encode_file(checkpoint, data / name, whole, chunk_frames=None))
        assert chunked.read_bytes() == whole.read_bytes()


def test_audit_says_ssl_codes_never_depend_on_batching_or_chunking(ssl_setup):
    _, data, ckpt = ssl_setup
    res = run_cli("audit", ckpt, data, "--json")
    assert res.code == 0, res.err
    overall = json.loads(res.out)["overall"]
    assert overall["batched"] == 1.0 and overall["chunked"] == 1.0
    # the setup's windows are short: audit also says what they cost against whole files
    assert set(overall) == {"batched", "chunked", "whole"} and 0 < overall["whole"] <= 1


def test_a_bad_file_in_an_ssl_batch_fails_alone(ssl_setup, tmp_path):
    _, data, ckpt = ssl_setup
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.wav").write_bytes((data / "a.wav").read_bytes())
    (mixed / "broken.wav").write_bytes(b"RIFF not really")
    sf.write(str(mixed / "short.wav"), _wave(0.01), 16000)  # 160 samples: no frame
    res = run_cli("encode", ckpt, mixed, "--out", tmp_path / "o", "-q")
    assert res.code == 1 and len(error_lines(res)) == 2, res.err
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a.tokens.safetensors"]


def test_other_ssl_weights_are_refused_in_one_line(ssl_setup, tmp_path):
    root, data, _ = ssl_setup
    weights = _random_weights(tmp_path / "w.safetensors", "HUBERT_BASE", 0)
    ckpt = tmp_path / "k.safetensors"
    assert run_cli("train", "-c", _ssl_config(tmp_path, weights), "-d", data / "a.wav",
                   "-o", ckpt, "-q").code == 0  # fmt: skip
    _random_weights(weights, "HUBERT_BASE", 7)  # the same path, other weights
    res = run_cli("encode", ckpt, data / "a.wav", "--out", tmp_path / "o", "-q")
    lines = error_lines(res)
    assert (
        res.code == 2
        and len(lines) == 1
        and "not the ones this tokenizer was trained on" in lines[0]
    )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_bundle_weights_come_from_the_hub_cache_offline(hubert, tmp_path, monkeypatch):
    """weights: null reads torch.hub's cache (as TORCH_HOME points it); with no file there
    and no network, one line says how to pass weights."""
    from safetensors.torch import load_file

    from tokquant.audio import ssl

    monkeypatch.setattr(ssl, "WEIGHTS_BASE_URL", "http://127.0.0.1:9/")  # nothing listens
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    wav = tmp_path / "a.wav"
    sf.write(str(wav), _wave(1.0), 16000)
    config = _ssl_config(tmp_path, None)
    res = run_cli("train", "-c", config, "-d", wav, "-o", tmp_path / "k.safetensors", "-q")
    lines = error_lines(res)
    assert res.code == 2 and len(lines) == 1 and "frontend.weights" in lines[0], res.err
    cache = tmp_path / "hub" / "checkpoints"
    assert list(cache.iterdir()) == []  # the failed download left nothing behind
    torch.save(load_file(str(hubert)), cache / "hubert_fairseq_base_ls960.pth")  # a .pt, as fetched
    res = run_cli("train", "-c", config, "-d", wav, "-o", tmp_path / "k.safetensors", "-q")
    assert res.code == 0, res.err
    recorded = load_checkpoint(tmp_path / "k.safetensors").tokenizer.config.frontend
    assert recorded.weights_sha256 == weights_digest(load_file(str(hubert)))  # .pt == safetensors


def test_ssl_tokens_decode_to_features_and_refuse_audio(ssl_setup, tmp_path):
    _, data, ckpt = ssl_setup
    run_cli("encode", ckpt, data / "a.wav", "--out", tmp_path / "t", "-q")
    res = run_cli("decode", ckpt, tmp_path / "t", "--out", tmp_path / "d", "--audio")
    assert (
        res.code == 2 and "ssl tokens decode to audio only through a vocoder" in error_lines(res)[0]
    )
    assert "then --vocoder" in error_lines(res)[0]
    assert run_cli("decode", ckpt, tmp_path / "t", "--out", tmp_path / "d", "-q").code == 0
    assert np.load(tmp_path / "d" / "a.npy").shape == (num_frames(int(3.1 * 16000)), 768)
    res = run_cli("stats", ckpt, tmp_path / "t", "--features", data / "a.wav", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["reconstruction"]["mse"] > 0


# --max-frames -----------------------------------------------------------------------------


def test_frame_sample_is_uniform_over_the_stream():
    """Every frame of a 40-frame stream, fed in uneven chunks, lands in a 10-frame sample
    with probability 10/40 (2,000 seeds: each count within 5 sigma of 500)."""
    stream = np.arange(40, dtype=np.float32)[:, None]
    counts = np.zeros(40)
    for seed in range(2000):
        sample = FrameSample(10, seed)
        for a, b in ((0, 3), (3, 17), (17, 18), (18, 40)):
            sample.add(stream[a:b])
        picked = sample.frames()[:, 0].astype(int)
        assert len(set(picked)) == 10
        counts[picked] += 1
    sigma = np.sqrt(2000 * 0.25 * 0.75)
    assert np.all(np.abs(counts - 500) < 5 * sigma), counts


def test_max_frames_covers_inputs_evenly_and_bounds_memory(tmp_path):
    """Each input's share of the sample follows its share of frames, and the peak memory
    of loading stays flat as the corpus grows 4x (it grows without --max-frames)."""
    config = TokenizerConfig.from_dict({"features": {"dim": 64}})
    rng = np.random.default_rng(0)
    items = []
    for i in range(40):
        path = tmp_path / f"f{i:02d}.npy"
        np.save(path, np.full((2000 if i % 2 else 1000, 64), i, np.float32)
                + rng.standard_normal((1, 64)).astype(np.float32) * 0)  # fmt: skip
        items.append(FileSource(key=Path(path.name), file=path))
    reader = FeatureReader(config, None)
    frames = load_frames(reader, items, max_frames=6000, seed=1).frames
    share = np.bincount(frames[:, 0].astype(int), minlength=40) / 6000
    want = np.array([2000 if i % 2 else 1000 for i in range(40)]) / 60000
    assert np.abs(share - want).max() < 0.01

    def peak(n: int, max_frames: int | None, with_next: bool = False) -> int:
        tracemalloc.start()
        load_frames(reader, items[:n], max_frames=max_frames, with_next=with_next)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    small, large = peak(10, 3000), peak(40, 3000)
    assert large < 1.2 * small
    assert peak(40, 3000, with_next=True) < 1.2 * peak(10, 3000, with_next=True)
    assert peak(40, None) > 3 * peak(10, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ssl_on_cuda_matches_cpu(hubert):
    wave = torch.from_numpy(_wave(2.0))
    cpu = build_frontend(_frontend(hubert, layers=[2])).features(wave)
    gpu = build_frontend(_frontend(hubert, layers=[2]), "cuda").features(wave)
    assert torch.allclose(cpu, gpu, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(
    ("frontend", "message"),
    [
        ({"model": "HUBERT_TINY"}, "frontend.model: must be a torchaudio SSL bundle"),
        (
            {"model": "HUBERT_BASE", "layers": [13]},
            "frontend.layers: must be an integer in [1, 12]",
        ),
        ({"model": "HUBERT_BASE", "layers": []}, "frontend.layers: must be a non-empty list"),
        ({"model": "HUBERT_BASE", "layer_merge": "sum"}, "frontend.layer_merge: must be one of"),
        ({"model": "WAVLM_LARGE", "precision": "int8"}, "frontend.precision: must be one of"),
    ],
)
def test_ssl_config_errors_name_the_key(frontend, message):
    from tokquant.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TokenizerConfig.from_dict({"frontend": {"kind": "ssl", **frontend}})


def test_ssl_checkpoint_config_round_trips_and_mel_configs_hold_no_ssl_keys():
    ssl = TokenizerConfig.from_dict({"frontend": {"kind": "ssl", "model": "WAVLM_BASE_PLUS",
                                                  "layers": [3, 6], "layer_merge": "concat"}})  # fmt: skip
    assert ssl.features.dim == 1536 and ssl.features.frame_rate == 50.0
    assert TokenizerConfig.from_dict(json.loads(ssl.to_json())).to_json() == ssl.to_json()
    mel = TokenizerConfig.from_dict({"frontend": {"kind": "logmel"}})
    assert "model" not in json.loads(mel.to_json())["frontend"]


def test_model_table_equals_torchaudio_bundles():
    """Configs validate against a torch-free table; it must say what torchaudio's bundles
    say, name for name (its ASR fine-tunes left out)."""
    from tokquant.audio._torchaudio import torchaudio_ssl
    from tokquant.audio.ssl_models import MODELS

    pipelines = torchaudio_ssl()[1]
    bundles = sorted(n for n in dir(pipelines)
                     if type(getattr(pipelines, n)) is pipelines.Wav2Vec2Bundle)  # fmt: skip
    assert sorted(MODELS) == bundles
    for name, row in MODELS.items():
        arch = architecture(name)
        assert (row.model_type, row.file_name, row.normalize_waveform) == (
            arch.model_type, arch.file_name, arch.normalize_waveform)  # fmt: skip
        assert (row.embed_dim, row.num_layers, row.num_heads) == (
            arch.embed_dim, arch.num_layers, arch.params["encoder_num_heads"])  # fmt: skip


def test_config_validates_without_torch():
    """Validating an SSL config imports neither torch nor torchaudio."""
    import subprocess
    import sys

    code = ("import sys; from tokquant.tokenizer.config import TokenizerConfig; "
            "c = TokenizerConfig.from_yaml('configs/hubert-base-l9-rvq-8x1024.yaml').validate(); "
            "print(c.frontend.feature_dim, c.frontend.num_frames(16000), "
            "sorted(m for m in ('torch', 'torchaudio', 'numpy') if m in sys.modules))")  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out == ["768", str(num_frames(16000)), "[]"]
