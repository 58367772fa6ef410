"""Shared fixtures: generated feature corpora, small configs, and a CLI runner."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from tokquant.audio.frontend import DEFAULT_CHUNK_FRAMES
from tokquant.cli.app import main
from tokquant.engines.outputs import write_token_file
from tokquant.runners.batcher import encode_streamed
from tokquant.runners.features import FeatureReader
from tokquant.sources import FileSource


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def small_dac_config():
    """A DAC of the published 16 kHz shape (hop 320) at toy width, for codec tests."""
    import transformers

    return transformers.DacConfig(
        encoder_hidden_size=4, downsampling_ratios=[2, 4, 5, 8], decoder_hidden_size=16,
        n_codebooks=3, codebook_size=32, codebook_dim=4, hidden_size=16, sampling_rate=16000,
    )  # fmt: skip


def small_mimi_config():
    """A Mimi of the published 24 kHz SEANet ratios and 12.5 Hz frames (hop 1920), with
    its split quantizer (1 semantic + 3 acoustic levels) and a causal transformer of 2
    layers, at toy width."""
    import transformers

    return transformers.MimiConfig(
        hidden_size=32, num_filters=4, num_residual_layers=1, upsampling_ratios=[8, 6, 5, 4],
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=16,
        intermediate_size=64, codebook_size=64, codebook_dim=8,
        vector_quantization_hidden_dimension=8, num_quantizers=4, num_semantic_quantizers=1,
        sliding_window=20, upsample_groups=32,
    )  # fmt: skip


def save_small_mimi(folder: Path, seed: int = 0) -> Path:
    """A random-weight :func:`small_mimi_config` model (codebooks drawn) saved as
    downloaded weights are."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = random_codebooks(transformers.MimiModel(small_mimi_config()).eval(), seed)
    model.save_pretrained(folder)
    return folder


def random_codebooks(model, seed: int = 0):
    """``transformers`` starts EnCodec's and Mimi's codebooks at zero (every code is then
    0, and a test of codes would hold for any encoder): draw them around the vectors each
    searches (first level: their mean and spread per dimension; later levels: half the
    spread around zero, as residuals are), so codes vary as a trained codec's do."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    rate = model.config.sampling_rate
    with torch.no_grad():
        latents = model.encoder(torch.randn(1, 1, rate, generator=gen) * 0.1)
        latents = latents if isinstance(latents, torch.Tensor) else latents[0]
        for name, buffer in model.named_buffers():
            searched = latents
            owner = name.split(".layers.")[0]
            project = dict(model.named_modules()).get(f"{owner}.input_proj")
            if project is not None:
                searched = project(latents)
            first = ".layers.0." in name  # the first level searches the vectors themselves
            vectors = searched[0].T  # [T, d]
            center = vectors.mean(0) if first else torch.zeros(vectors.shape[1])
            spread = vectors.std(0) * (1.0 if first else 0.5)
            if name.endswith(("codebook.embed", "codebook.embed_avg", "codebook.embed_sum")):
                noise = torch.randn(buffer.shape, generator=gen)
                buffer.copy_(center + noise * spread)
            elif name.endswith(("codebook.cluster_usage", "codebook.cluster_size")):
                buffer.fill_(1.0)  # Mimi divides embed_sum by it
    return model


def save_small_dac(folder: Path, seed: int = 0) -> Path:
    """A random-weight :func:`small_dac_config` model saved as downloaded weights are."""
    import torch
    import transformers

    torch.manual_seed(seed)
    transformers.DacModel(small_dac_config()).save_pretrained(folder)
    return folder


def run_cli(*args: str | Path) -> CliResult:
    """Run ``tokquant ARGS`` in this process; capture exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli


def make_features(root: Path, dim: int = 12, seed: int = 0) -> Path:
    """A small tree of structured features: a few clusters with smooth drift."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((6, dim)).astype(np.float32) * 2
    layout = {"a.npy": 120, "b.npy": 90, "sub/c.npy": 75, "sub/deeper/d.npy": 60}
    for name, frames in layout.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        which = rng.integers(0, 6, size=frames)
        x = centers[which] + 0.3 * rng.standard_normal((frames, dim)).astype(np.float32)
        np.save(path, x.astype(np.float32))
    return root


def write_config(path: Path, family: str = "bsq", **overrides) -> Path:
    quantizer = {
        "bsq": {"family": "bsq", "code_dim": 8},
        "lfq": {"family": "lfq", "code_dim": 6, "group_size": 3},
        "rvq": {"family": "rvq", "num_levels": 3, "num_embeddings": [16, 8, 8]},
        "fsq": {"family": "fsq", "levels": [5, 4, 3]},
    }[family]
    config = {
        "quantizer": quantizer,
        "projection": {"kind": "none" if family == "rvq" else "linear"},
        "features": {"frame_rate": 50.0},
        "train": {"steps": 40, "batch_frames": 128, "lr": 3e-3, "eval_every": 20,
                  "kmeans_iters": 5},
    }  # fmt: skip
    for key, value in overrides.items():
        section, name = key.split("__")
        config[section][name] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return make_features(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, corpus) -> Path:
    """A BSQ checkpoint trained once for the whole session."""
    root = tmp_path_factory.mktemp("ckpt")
    config = write_config(root / "bsq.yaml")
    result = run_cli(
        "train", "--config", config, "--data", corpus, "--out", root / "bsq.safetensors"
    )
    assert result.code == 0, result.err
    return root / "bsq.safetensors"


def encode_file(tok, path, out_path, *, chunk_frames=DEFAULT_CHUNK_FRAMES):
    """One input to one token file, read chunk by chunk; returns its codes."""
    source = FileSource(key=Path(Path(path).name), file=Path(path))
    codes = encode_streamed(tok, FeatureReader.of(tok), source, chunk_frames=chunk_frames)
    write_token_file(tok, out_path, codes, source=str(path))
    return codes


#: The bundled audio corpus (5 speakers x 6 utterances, 16 kHz flac).
SAMPLES = Path(__file__).resolve().parent.parent / "scripts" / "sample_data" / "audio"


def train_logmel(root: Path, quantizer: str, *, train: str = "steps: 5, batch_frames: 256",
                 projection: str | None = None) -> Path:  # fmt: skip
    """A small 40-mel checkpoint trained on one bundled speaker (``quantizer`` and
    ``train`` as YAML flow mappings' contents); its path."""
    config = root / "c.yaml"
    extra = f"projection: {{kind: {projection}}}\n" if projection else ""
    config.write_text(f"frontend: {{kind: logmel, n_mels: 40}}\nquantizer: {{{quantizer}}}\n"
                      f"{extra}train: {{{train}}}\n")  # fmt: skip
    res = run_cli("train", "-c", config, "-d", SAMPLES / "us_m", "-o", root / "m.safetensors")
    assert res.code == 0, res.err
    return root / "m.safetensors"


@pytest.fixture(scope="session")
def logmel_rvq(tmp_path_factory) -> Path:
    """A small 40-mel RVQ checkpoint (3 levels of 32 codes) for the source and
    hostile-input suites, trained once per session."""
    return train_logmel(tmp_path_factory.mktemp("logmel-rvq"),
                        "family: rvq, num_levels: 3, num_embeddings: 32",
                        train="steps: 5, batch_frames: 256, kmeans_iters: 2")  # fmt: skip


def content_id(path: Path) -> str:
    """A checkpoint's id computed here from its file with the safetensors library
    (README, File formats): sha256 of the config JSON as stored, then each tensor's
    name, dtype, shape and little-endian bytes in name order; not the library's code."""
    import hashlib

    from safetensors import safe_open

    with safe_open(str(path), "np") as fh:
        meta = fh.metadata()
        assert meta.get("id_scheme") == "content-v1"
        digest = hashlib.sha256(b"tokquant-checkpoint-content-v1\0")
        digest.update(meta["config"].encode("utf-8") + b"\0")
        for name in sorted(fh.keys()):
            array = np.ascontiguousarray(fh.get_tensor(name))
            digest.update(f"{name}\0{array.dtype.str}\0{list(array.shape)}\0".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
