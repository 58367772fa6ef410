"""Codec tokenizers (issue 39): a transformers EnCodec, DAC or Mimi folder (small random weights,
written by ``save_pretrained`` as downloaded weights are) imported as a tokenizer whose
codes are the codec's own (``processor`` + ``model.encode``), alone and in a corpus, and
whose audio is ``model.decode``'s; weights are checked, a pickle is never loaded, and a
config asking for a huge model is refused before anything is allocated."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import tokquant
from tests.conftest import random_codebooks, run_cli, small_dac_config, small_mimi_config
from tokquant.formats.corpus import Corpus
from tokquant.formats.tokens import read_tokens

transformers = pytest.importorskip("transformers")

#: Small configs of the published architectures' shapes (EnCodec 24 kHz: hop 320, 75
#: frames/s; DAC 16 kHz: hop 320; Mimi: hop 1920, 12.5 frames/s), random weights.
CONFIGS = {
    "encodec": lambda: transformers.EncodecConfig(
        target_bandwidths=[1.5, 3.0, 6.0], sampling_rate=24000, audio_channels=1,
        num_filters=4, hidden_size=16, codebook_size=32, codebook_dim=16,
        upsampling_ratios=[8, 5, 4, 2], num_lstm_layers=1,
    ),
    "dac": small_dac_config,
    "mimi": small_mimi_config,
}  # fmt: skip
MODELS = {"encodec": "EncodecModel", "dac": "DacModel", "mimi": "MimiModel"}
#: Samples per frame, as each codec's paper gives it (not as tokquant computes it).
HOPS = {"encodec": 320, "dac": 320, "mimi": 1920}
#: Lengths in seconds: under one hop's worth of frames apart, and not whole hops.
SECONDS = (0.31, 1.07, 2.013)


def reference_codes(kind: str, model, wave: np.ndarray, rate: int) -> torch.Tensor:
    """What a user writes with transformers: the processor, then ``model.encode``."""
    with torch.no_grad():
        if kind == "mimi":  # kyutai/mimi's processor is EnCodec's feature extractor
            fe = transformers.EncodecFeatureExtractor(feature_size=1, sampling_rate=rate)
            inp = fe(raw_audio=wave, sampling_rate=rate, return_tensors="pt")
            return model.encode(inp["input_values"], inp["padding_mask"]).audio_codes[0].T
        if kind == "encodec":
            fe = transformers.EncodecFeatureExtractor(feature_size=1, sampling_rate=rate)
            inp = fe(raw_audio=wave, sampling_rate=rate, return_tensors="pt")
            bandwidth = model.config.target_bandwidths[-1]
            out = model.encode(inp["input_values"], inp["padding_mask"], bandwidth=bandwidth)
            return out.audio_codes[0, 0].T
        fe = transformers.DacFeatureExtractor(
            sampling_rate=rate, hop_length=model.config.hop_length
        )
        inp = fe(raw_audio=wave, sampling_rate=rate, return_tensors="pt")
        return model.encode(inp["input_values"]).audio_codes[0].T


def reference_audio(kind: str, model, codes: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if kind == "encodec":
            return model.decode(codes.T[None, None], [None]).audio_values[0, 0]
        if kind == "mimi":
            return model.decode(codes.T[None]).audio_values[0, 0]
        return model.decode(audio_codes=codes.T[None]).audio_values[0]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def codec(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    torch.manual_seed(0)
    model = random_codebooks(getattr(transformers, MODELS[kind])(CONFIGS[kind]()).eval())
    model.save_pretrained(root / "codec")
    rate = model.config.sampling_rate
    rng = np.random.default_rng(1)
    (root / "wav").mkdir()
    waves = {}
    for i, seconds in enumerate(SECONDS):
        wave = (rng.standard_normal(round(seconds * rate)) * 0.1).astype(np.float32)
        sf.write(root / "wav" / f"u{i}.wav", wave, rate, subtype="FLOAT")
        waves[f"u{i}"] = wave
    codes = reference_codes(kind, model, waves["u2"], rate)
    assert all(len(set(column.tolist())) > 3 for column in codes.T)  # codes that can differ
    res = run_cli("import", "codec", root / "codec", "--out", root / "tok.safetensors", "--json")
    assert res.code == 0, res.err
    return kind, model, root, waves


def test_codes_are_the_codecs_own_alone_and_in_a_corpus(codec):
    kind, model, root, waves = codec
    rate = model.config.sampling_rate
    res = run_cli("encode", root / "tok.safetensors", root / "wav", "--out", root / "tok", "-q")
    assert res.code == 0, res.err
    res = run_cli("encode", root / "tok.safetensors", root / "wav", "--out", root / "corpus",
                  "--shards", "--shard-size", "2", "-q")  # fmt: skip
    assert res.code == 0, res.err
    corpus = Corpus(root / "corpus")
    for key, wave in waves.items():
        want = reference_codes(kind, model, wave, rate)
        alone = read_tokens(root / "tok" / f"{key}.tokens.safetensors").codes
        assert torch.equal(torch.as_tensor(alone).long(), want), key
        assert np.array_equal(np.asarray(corpus[key]), alone), key
    tok = tokquant.load(root / "tok.safetensors")
    assert torch.equal(
        tok.encode_audio(waves["u1"], rate), reference_codes(kind, model, waves["u1"], rate)
    )


def test_decode_audio_is_the_codecs_decode(codec, tmp_path):
    kind, model, root, waves = codec
    tok = tokquant.load(root / "tok.safetensors")
    codes = tok.encode_audio(waves["u2"], model.config.sampling_rate)
    ours = tok.decode_audio(codes)
    want = reference_audio(kind, model, codes)
    n = min(len(ours), len(want))
    assert n >= len(waves["u2"]) - HOPS[kind]
    assert torch.allclose(ours[:n], want[:n], atol=1e-5)
    res = run_cli("encode", root / "tok.safetensors", root / "wav", "--out", tmp_path / "t", "-q")
    assert res.code == 0
    res = run_cli(
        "decode", root / "tok.safetensors", tmp_path / "t", "--audio", "--out", tmp_path / "w"
    )
    assert res.code == 0, res.err
    wav, rate = sf.read(tmp_path / "w" / "u2.wav", dtype="float32")
    assert rate == model.config.sampling_rate
    clipped = np.clip(want[:n].numpy(), -1, 1)  # a random Mimi's audio leaves [-1, 1]
    assert np.abs(wav[:n] - clipped).max() <= 1.0 / 32768 + 1e-5  # a 16-bit wav


def test_audit_finds_codes_independent_of_batching(codec):
    _, _, root, _ = codec
    res = run_cli("audit", root / "tok.safetensors", root / "wav", "--json")
    assert res.code == 0, res.err
    overall = json.loads(res.out)["overall"]
    assert overall["batched"] == 1.0 and overall["chunked"] == 1.0


def test_other_weights_are_refused(codec, tmp_path):
    kind, model, root, _ = codec
    other = tmp_path / "other"
    torch.manual_seed(1)
    random_codebooks(getattr(transformers, MODELS[kind])(CONFIGS[kind]()), 1).save_pretrained(other)
    # the tokenizer names its codec folder and the weights' sha256: swap the weights
    original = (root / "codec" / "model.safetensors").read_bytes()
    try:
        (root / "codec" / "model.safetensors").write_bytes(
            (other / "model.safetensors").read_bytes()
        )
        res = run_cli("encode", root / "tok.safetensors", root / "wav", "--out", tmp_path / "x")
        assert res.code == 2 and "not the ones this tokenizer was made with" in res.err, res.err
        assert "Traceback" not in res.err
    finally:
        (root / "codec" / "model.safetensors").write_bytes(original)
    config = (root / "codec" / "config.json").read_text()
    try:  # the same tensors under another config: other codes, refused as well
        saved = json.loads(config)
        pad = "replicate" if saved.get("pad_mode") == "constant" else "constant"
        changed = {**saved, "pad_mode": pad}
        (root / "codec" / "config.json").write_text(json.dumps(changed))
        res = run_cli("encode", root / "tok.safetensors", root / "wav", "--out", tmp_path / "y")
        assert res.code == 2 and "weights or config" in res.err, res.err
    finally:
        (root / "codec" / "config.json").write_text(config)


class _Boom:
    def __reduce__(self):
        return (Path.write_text, (Path(_Boom.marker), "unpickled"))


def test_a_pickled_codec_is_never_loaded(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.manual_seed(0)
    model = transformers.DacModel(CONFIGS["dac"]())
    model.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    _Boom.marker = str(tmp_path / "marker")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom()))
    res = run_cli("import", "codec", folder, "--out", tmp_path / "t.safetensors")
    assert res.code == 2 and "never loaded" in res.err and "Traceback" not in res.err, res.err
    assert not (tmp_path / "marker").exists() and not (tmp_path / "t.safetensors").exists()


@pytest.mark.parametrize(
    "kind, edit, message",
    [
        ("dac", {"hidden_size": 10**7}, "hidden_size must be an integer in"),
        ("dac", {"downsampling_ratios": [64, 64, 64]}, "downsampling_ratios must be"),
        ("dac", {"n_codebooks": True}, "n_codebooks must be an integer"),
        ("dac", {"model_type": "xcodec"}, "is not a codec tokquant reads"),
        ("mimi", {"audio_channels": 2}, "a stereo Mimi is not supported"),
        ("mimi", {"codebook_dim": 16},
         "codebook_dim must equal vector_quantization_hidden_dimension"),
        ("mimi", {"num_hidden_layers": 10**6}, "num_hidden_layers must be an integer in"),
        ("mimi", {"sliding_window": 10**9}, "sliding_window must be an integer in"),
    ],
)  # fmt: skip
def test_a_huge_unknown_or_unreadable_codec_config_is_refused_before_allocation(
    tmp_path, kind, edit, message
):
    folder = tmp_path / "codec"
    torch.manual_seed(0)
    getattr(transformers, MODELS[kind])(CONFIGS[kind]()).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    res = run_cli("import", "codec", folder, "--out", tmp_path / "t.safetensors")
    assert res.code == 2 and message in res.err and "Traceback" not in res.err, res.err


def test_a_quantizer_trained_on_dac_latents_is_scored_beside_dacs_own_codes(tmp_path):
    """Codec latents as features (issue 39, item 4): an FSQ trained on DAC's latents of the
    bundled voices decodes through DAC's decoder, and ``eval`` scores it beside DAC's own
    codes on the same audio (random weights: the scores mean nothing, the wiring does)."""
    from tests.conftest import SAMPLES

    torch.manual_seed(0)
    transformers.DacModel(CONFIGS["dac"]()).save_pretrained(tmp_path / "dac")
    assert (
        run_cli("import", "codec", tmp_path / "dac", "--out", tmp_path / "dac.safetensors").code
        == 0
    )
    (tmp_path / "fsq.yaml").write_text(
        f"frontend: {{kind: codec, weights: {tmp_path / 'dac'}}}\n"
        "quantizer: {family: fsq, levels: [5, 5, 5]}\n"
        "projection: {kind: linear}\n"
        "train: {steps: 20, batch_frames: 256, eval_every: 10}\n"
    )
    res = run_cli("train", "--config", tmp_path / "fsq.yaml", "--data", SAMPLES / "us_f",
                  "--out", tmp_path / "fsq.safetensors", "-q")  # fmt: skip
    assert res.code == 0, res.err
    wav = tmp_path / "wav"
    wav.mkdir()
    for name in ("utt00", "utt01"):
        (wav / f"{name}.flac").write_bytes((SAMPLES / "us_m" / f"{name}.flac").read_bytes())
    reports = {}
    for name in ("dac", "fsq"):
        ckpt = tmp_path / f"{name}.safetensors"
        assert run_cli("encode", ckpt, wav, "--out", tmp_path / f"t-{name}", "-q").code == 0
        res = run_cli("eval", ckpt, tmp_path / f"t-{name}", "--audio", wav, "--json")
        assert res.code == 0, res.err
        reports[name] = json.loads(res.out)
    for report in reports.values():
        assert report["decoder"].startswith("dac:") and len(report["rows"]) == 2
        assert {"mel_distance", "stft_distance"} <= set(report["overall"])
    assert reports["dac"]["bitrate_kbps"] == pytest.approx(3 * 5 * 50 / 1000)  # 3 x 32 codes
    assert reports["fsq"]["bitrate_kbps"] == pytest.approx(np.log2(125) * 50 / 1000)  # 125 codes


def test_a_hub_id_offline_and_not_cached_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.chdir(tmp_path)
    res = run_cli(
        "import", "codec", "tokquant-test/no-such-codec", "--out", tmp_path / "t.safetensors"
    )
    assert res.code == 2 and "cannot fetch from the Hugging Face Hub" in res.err, res.err
    assert "Traceback" not in res.err and not (tmp_path / "t.safetensors").exists()


def test_a_long_file_in_windows_gives_the_whole_files_codes(codec):
    """Past ``window_seconds`` a file is encoded in windows with context (bounded memory);
    on these models the codes equal the whole file's (EnCodec's LSTM included), and a
    misplaced window would show here at once."""
    from tokquant.tokenizer.importers import tokenizer_for_codec

    kind, model, root, _ = codec
    rate = model.config.sampling_rate
    wave = (np.random.default_rng(2).standard_normal(rate * 6 + 111) * 0.1).astype(np.float32)
    whole = tokenizer_for_codec(root / "codec")
    windowed = tokenizer_for_codec(root / "codec")
    windowed.config.frontend.window_seconds = 1.0
    if kind != "mimi":  # Mimi's context covers its transformer's attention span (1.8 s here)
        windowed.config.frontend.context_seconds = 0.5
    assert len(windowed.frontend().windows(windowed.frontend().num_frames(len(wave)))) == 7
    a, b = whole.encode_audio(wave, rate), windowed.encode_audio(wave, rate)
    assert a.shape == b.shape and (a == b).all(dim=1).float().mean() >= 0.99
    assert torch.equal(a, reference_codes(kind, model, wave, rate))


def test_audit_reports_windowed_codes_against_the_whole_files(codec, tmp_path):
    """Where windows cost codes (here: no context at all), ``audit`` says by how much."""
    from tokquant.runners.audit import audit
    from tokquant.sources import sources_for
    from tokquant.tokenizer.importers import tokenizer_for_codec

    kind, model, root, _ = codec
    rate = model.config.sampling_rate
    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    waves = {"long": rng.standard_normal(int(rate * 3.5)), "short": rng.standard_normal(rate // 2)}
    for name, wave in waves.items():
        sf.write(tmp_path / "in" / f"{name}.wav", (wave * 0.1).astype(np.float32), rate,
                 subtype="FLOAT")  # fmt: skip
    windowed = tokenizer_for_codec(root / "codec")
    windowed.config.frontend.window_seconds, windowed.config.frontend.context_seconds = 1.0, 0
    items = sources_for(windowed.config, [tmp_path / "in"], outputs=False)
    report = audit(windowed, items)
    assert report.ways == ["batched", "chunked", "whole"] or report.ways[2] == "whole"
    rows = {Path(r["input"]).stem: r for r in report.rows}
    assert rows["short"]["whole"] is None  # one window: the whole file's own call
    long = sf.read(tmp_path / "in" / "long.wav", dtype="float32")[0]
    a = tokenizer_for_codec(root / "codec").encode_audio(long, rate)
    b = windowed.encode_audio(long, rate)
    assert rows["long"]["whole"] == pytest.approx(float((a == b).all(dim=1).float().mean()))
    assert report.overall()["whole"] == rows["long"]["whole"]
    if kind == "dac":  # non-causal: without context its window edges lose codes
        assert rows["long"]["whole"] < 1.0


def test_the_datasets_map_function_gives_the_codecs_codes(codec):
    """``tokenize_fn`` (the ``datasets.map`` callable) on decoded cells, as ``datasets``
    hands them over (float64 samples)."""
    from tokquant.integrations.hf import tokenize_fn

    kind, model, root, waves = codec
    rate = model.config.sampling_rate
    fn = tokenize_fn(root / "tok.safetensors")
    cells = [{"array": w.astype(np.float64), "sampling_rate": rate, "path": f"{k}.wav"}
             for k, w in waves.items()]  # fmt: skip
    out = fn({"audio": cells})
    for wave, codes in zip(waves.values(), out["codes"], strict=True):
        assert np.array_equal(np.asarray(codes), reference_codes(kind, model, wave, rate).numpy())


def test_stats_levels_and_export_read_a_codec_corpus(codec, tmp_path):
    """The rest of the commands need nothing of their own for a codec tokenizer."""
    kind, model, root, waves = codec
    ckpt = root / "tok.safetensors"
    res = run_cli("encode", ckpt, root / "wav", "--out", tmp_path / "c", "--shards", "-q")
    assert res.code == 0, res.err
    res = run_cli("stats", ckpt, tmp_path / "c", "--json")
    assert res.code == 0, res.err
    stats = json.loads(res.out)
    levels = len(stats["columns"])
    assert levels >= 3 and stats["frames"] == sum(-(-len(w) // HOPS[kind])
                                                  for w in waves.values())  # fmt: skip
    res = run_cli("encode", ckpt, root / "wav", "--out", tmp_path / "two", "--levels", "2", "-q")
    assert res.code == 0, res.err
    two = read_tokens(tmp_path / "two" / "u1.tokens.safetensors").codes
    want = reference_codes(kind, model, waves["u1"], model.config.sampling_rate)
    assert np.array_equal(two, want[:, :2].numpy())
    res = run_cli("export", tmp_path / "c", "--to", "parquet", "--out", tmp_path / "p", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["utterances"] == len(waves)
