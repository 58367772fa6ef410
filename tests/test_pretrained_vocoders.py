"""Pretrained Vocos and BigVGAN vocoders: tokquant's front end computes each package's
own mel, a local folder loads as the package would load it (random weights of the
published architecture stand in for downloaded ones: the same code path), and hostile
or mismatched folders are one line."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import SAMPLES, run_cli
from tokquant.audio.frontend import FrontEnd, reader_features
from tokquant.audio.waveform import WaveformReader
from tokquant.decoders.chunks import vocode
from tokquant.decoders.pretrained.networks import MEL_FIELDS, load_pretrained, mel_frontend
from tokquant.errors import FormatError, InputError
from tokquant.storage.hub import is_hub_id
from tokquant.tokenizer.config import TokenizerConfig

pytest.importorskip("vocos")
pytest.importorskip("bigvgan")

ROOT = Path(__file__).resolve().parent.parent
#: charactr/vocos-mel-24khz's config.yaml, as published.
VOCOS_YAML = """\
feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: 24000
    n_fft: 1024 # 42.66 msec
    hop_length: 256 # 10.66 msec, 3/4 overlap
    n_mels: 100
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: 100
    dim: 512
    intermediate_dim: 1536
    num_layers: 8

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: 512
    n_fft: 1024
    hop_length: 256
    padding: center
"""
#: nvidia/bigvgan_v2_24khz_100band_256x's generator and mel settings (its config.json),
#: narrowed from 1536 to 64 initial channels to keep the suite fast: same classes, layers
#: and code path.
BIGVGAN_24K = {
    "resblock": "1", "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3,
    "use_tanh_at_final": False, "use_bias_at_final": False, "activation": "snakebeta",
    "snake_logscale": True, "num_mels": 100, "num_freq": 1025, "n_fft": 1024, "hop_size": 256,
    "win_size": 1024, "sampling_rate": 24000, "fmin": 0, "fmax": None, "fmax_for_loss": None,
}  # fmt: skip
BIGVGAN_22K = {**BIGVGAN_24K, "num_mels": 80, "sampling_rate": 22050, "fmax": 8000}


def vocos_config() -> dict:
    import yaml

    return yaml.safe_load(VOCOS_YAML)


def package_mel(kind: str, config: dict, wave: torch.Tensor) -> torch.Tensor:
    """``[T, n_mels]`` log-mels by the package's own function."""
    if kind == "vocos":
        from vocos.feature_extractors import MelSpectrogramFeatures

        fe = MelSpectrogramFeatures(**config["feature_extractor"]["init_args"])
        return fe(wave[None])[0].T
    from bigvgan.meldataset import mel_spectrogram

    c = config
    return mel_spectrogram(wave[None], c["n_fft"], c["num_mels"], c["sampling_rate"],
                           c["hop_size"], c["win_size"], c["fmin"], c["fmax"])[0].T  # fmt: skip


def streamed_mel(front, wave: torch.Tensor) -> torch.Tensor:
    """Through tokquant's streaming reader, in 256-frame blocks (ends mirrored there)."""
    reader = WaveformReader(wave.numpy()[:, None], front.sample_rate, "random")
    return torch.from_numpy(np.concatenate(list(reader_features(reader, FrontEnd(front)))))


@pytest.mark.parametrize(
    ("kind", "config"),
    [("vocos", None), ("bigvgan", BIGVGAN_24K), ("bigvgan", BIGVGAN_22K)],
    ids=["vocos-24k", "bigvgan-24k-100", "bigvgan-22k-80"],
)
def test_the_front_end_computes_each_packages_own_mel(kind, config):
    config = config or vocos_config()
    front = mel_frontend(kind, config)
    g = torch.Generator().manual_seed(0)
    # two blocks and a ragged end; the shortest signals that have a frame at all
    lengths = [front.sample_rate * 3 + 17, 4000, front.min_samples, front.min_samples + 255]
    for n in lengths:
        wave = (torch.rand(n, generator=g) * 2 - 1) * 0.5
        ours, theirs = streamed_mel(front, wave), package_mel(kind, config, wave)
        assert ours.shape == theirs.shape == (front.num_frames(n), front.n_mels), n
        assert (ours - theirs).abs().max() <= 1e-4, n


def test_shipped_configs_are_the_published_mels():
    published = {"vocos": mel_frontend("vocos", vocos_config()),
                 "bigvgan": mel_frontend("bigvgan", BIGVGAN_24K)}  # fmt: skip
    for kind, want in published.items():
        for path in sorted((ROOT / "configs").glob(f"logmel-{kind}-*.yaml")):
            front = TokenizerConfig.from_yaml(path).frontend
            assert {f: getattr(front, f) for f in MEL_FIELDS} == {
                f: getattr(want, f) for f in MEL_FIELDS
            }, path.name
    assert len(list((ROOT / "configs").glob("logmel-*-*-*.yaml"))) >= 4


@pytest.fixture(scope="module")
def vocos_folder(tmp_path_factory):
    """A randomly initialised Vocos of the published architecture, saved as published."""
    from vocos.pretrained import Vocos

    folder = tmp_path_factory.mktemp("vocos-mel-24khz")
    (folder / "config.yaml").write_text(VOCOS_YAML)
    torch.manual_seed(0)
    model = Vocos.from_hparams(str(folder / "config.yaml")).eval()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder, model


@pytest.fixture(scope="module")
def bigvgan_folder(tmp_path_factory):
    """A randomly initialised BigVGAN v2 (narrowed), saved by the package's own saver."""
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    folder = tmp_path_factory.mktemp("bigvgan")
    torch.manual_seed(0)
    model = BigVGAN(AttrDict(dict(BIGVGAN_24K))).eval()
    model._save_pretrained(folder)  # config.json + bigvgan_generator.pt, weight norm kept
    return folder, model


@pytest.mark.parametrize("which", ["vocos", "bigvgan"])
def test_a_local_folder_decodes_as_the_package_does(which, vocos_folder, bigvgan_folder):
    folder, model = vocos_folder if which == "vocos" else bigvgan_folder
    net = load_pretrained(folder)
    mels = torch.randn(1, net.config.feature_dim, 150, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        theirs = model.decode(mels) if which == "vocos" else model(mels)[:, 0]
        ours = net(mels.transpose(1, 2))
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max() <= 1e-5
    # long inputs in chunks, each with receptive_frames of context: as decoded whole
    whole = vocode(net, mels[0].T, 0)
    chunked = vocode(net, mels[0].T, 0, chunk_frames=40)
    assert whole.shape == chunked.shape and (whole - chunked).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def vocos_tokenizer(tmp_path_factory):
    """A small RVQ tokenizer on Vocos' mel (the shipped config's front end)."""
    import yaml

    root = tmp_path_factory.mktemp("vocos-tok")
    config = yaml.safe_load((ROOT / "configs/logmel-vocos-rvq-8x1024.yaml").read_text())
    config["quantizer"] |= {"num_levels": 2, "num_embeddings": 16}
    config["train"] |= {"steps": 3, "kmeans_iters": 1, "batch_frames": 512}
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    res = run_cli(
        "train", "-c", root / "c.yaml", "-d", SAMPLES / "us_m", "-o", root / "t.safetensors"
    )
    assert res.code == 0, res.err
    return root / "t.safetensors"


def test_decode_and_the_api_give_aligned_audio_through_a_folder(
    vocos_tokenizer, vocos_folder, bigvgan_folder, tmp_path
):
    import tokquant

    wav = sorted((SAMPLES / "us_m").glob("*.flac"))[0]
    res = run_cli("encode", vocos_tokenizer, wav, "-o", tmp_path / "tok")
    assert res.code == 0, res.err
    res = run_cli("decode", vocos_tokenizer, tmp_path / "tok", "-o", tmp_path / "wav", "--audio",
                  "--vocoder", vocos_folder[0])  # fmt: skip
    assert res.code == 0, res.err
    decoded, rate = sf.read(next((tmp_path / "wav").glob("*.wav")), dtype="float32")
    tok = tokquant.load(vocos_tokenizer)
    samples, sample_rate = sf.read(wav, dtype="float32")
    codes = tok.encode_audio(samples, sample_rate)
    api = tok.decode_audio(codes, vocoder=vocos_folder[0]).numpy()
    assert rate == 24000 and np.abs(decoded - api).max() <= 1e-4
    # Vocos' frames are centred: T frames give (T - 1) * hop samples from sample 0
    assert len(api) == (codes.shape[0] - 1) * 256
    griffin_lim = tok.decode_audio(codes)  # the fallback knows the mirrored framing too
    assert abs(len(griffin_lim) - len(api)) <= 256
    # eval scores through the folder too: the decoded audio lines up with the input
    res = run_cli("eval", vocos_tokenizer, tmp_path / "tok", "--audio", wav, "--vocoder",
                  vocos_folder[0], "--json")  # fmt: skip
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["decoder"] == vocos_folder[0].name and report["rows"][0]["mel_distance"] > 0
    # BigVGAN's mel is another: refused in one line, and nothing written
    res = run_cli("decode", vocos_tokenizer, tmp_path / "tok", "-o", tmp_path / "no", "--audio",
                  "--vocoder", bigvgan_folder[0])  # fmt: skip
    assert res.code == 2 and "frontend.log_floor 1e-05" in res.err
    assert len(res.err.strip().splitlines()) == 1 and not (tmp_path / "no").exists()
    # a Hub id that cannot be fetched (offline here, and nothing cached)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    cmd = [sys.executable, "-m", "tokquant", "decode", vocos_tokenizer, tmp_path / "tok", "-o",
           tmp_path / "hub", "--audio", "--vocoder", "charactr/vocos-mel-24khz"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "charactr/vocos-mel-24khz: cannot fetch from the Hugging Face Hub" in proc.stderr


def test_bigvgan_weights_saved_without_weight_norm_load_too(tmp_path):
    """The published generator keeps weight norm; a copy saved after folding it (as
    inference scripts do) has plain weights, and loads into a folded model."""
    import contextlib
    import io

    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    torch.manual_seed(1)
    model = BigVGAN(AttrDict(dict(BIGVGAN_24K))).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        model.remove_weight_norm()
    model._save_pretrained(tmp_path)
    assert not any(k.endswith("weight_v") for k in model.state_dict())
    mels = torch.randn(1, 100, 40, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        theirs, ours = model(mels)[:, 0], load_pretrained(tmp_path)(mels.transpose(1, 2))
    assert (ours - theirs).abs().max() <= 1e-5


def test_a_tokenizer_on_another_mel_is_refused(logmel_rvq, vocos_folder):
    import tokquant

    tok = tokquant.load(logmel_rvq)
    with pytest.raises(InputError, match="frontend.sample_rate 24000, this tokenizer's is 16000"):
        tok.decode_audio(np.zeros((5, 3), dtype=np.int64), vocoder=vocos_folder[0])


def copy_folder(src: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in src.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


class _Payload:
    """Unpickling this creates ``marker``: a stand-in for code in a weights file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_hostile_or_broken_folders_are_one_line_and_run_nothing(
    vocos_folder, bigvgan_folder, tmp_path
):
    vocos, bigvgan = vocos_folder[0], bigvgan_folder[0]
    # a class path is never imported
    bad = copy_folder(vocos, tmp_path / "classpath")
    (bad / "config.yaml").write_text(VOCOS_YAML.replace("vocos.models.VocosBackbone", "os.system"))
    with pytest.raises(FormatError, match="reads mel Vocos models"):
        load_pretrained(bad)
    # pickled code in the weights is refused, not run
    marker = tmp_path / "ran"
    bad = copy_folder(vocos, tmp_path / "pickle")
    with open(bad / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"backbone.embed.weight": _Payload(str(marker))}, fh)
    with pytest.raises(FormatError, match="not a state dict file"):
        load_pretrained(bad)
    assert not marker.exists()
    # a config asking for a huge model allocates nothing and says so
    bad = copy_folder(bigvgan, tmp_path / "huge")
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(config | {"upsample_initial_channel": 8192}))
    with pytest.raises(FormatError, match=r"weights: \S+ has shape \[\d+"):
        load_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(config | {"upsample_initial_channel": 10**9}))
    with pytest.raises(FormatError, match="upsample_initial_channel must be an integer in"):
        load_pretrained(bad)
    # a value too big to print is quoted short: the error stays one bounded line
    for value in (list(range(100_000)), 10**4000, "x" * 100_000):
        (bad / "config.json").write_text(json.dumps(config | {"upsample_initial_channel": value}))
        with pytest.raises(FormatError, match="upsample_initial_channel must be an") as err:
            load_pretrained(bad)
        assert len(str(err.value)) < 400 and "\n" not in str(err.value)
    # a config cannot ask for a CUDA kernel to be compiled
    bad = copy_folder(bigvgan, tmp_path / "kernel")
    (bad / "config.json").write_text(json.dumps(config | {"use_cuda_kernel": True}))
    assert load_pretrained(bad).net.h["use_cuda_kernel"] is False
    # missing weights, a folder of something else, a file that is not there
    bad = copy_folder(vocos, tmp_path / "noweights")
    (bad / "pytorch_model.bin").unlink()
    with pytest.raises(
        InputError, match="has config.yaml but no model.safetensors or pytorch_model.bin"
    ):
        load_pretrained(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a Vocos .* or BigVGAN .* vocoder folder"):
        load_pretrained(tmp_path / "empty")
    with pytest.raises(InputError, match="missing.safetensors: no such file or folder"):
        load_pretrained(tmp_path / "missing.safetensors")


def test_a_missing_extra_is_one_line_and_hub_ids_are_told_from_paths(
    vocos_folder, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "vocos.pretrained", None)  # as if not installed
    with pytest.raises(
        InputError, match=r"needs the vocos package \(pip install 'tokquant\[vocos\]'"
    ):
        load_pretrained(vocos_folder[0])
    assert is_hub_id("charactr/vocos-mel-24khz")
    assert is_hub_id("nvidia/bigvgan_v2_24khz_100band_256x")
    assert not is_hub_id("runs/rvq.vocoder.safetensors") and not is_hub_id(str(tmp_path))
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").mkdir()
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("owner/name")  # a folder here is a folder
