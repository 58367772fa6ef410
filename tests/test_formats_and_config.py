"""Configs, the deterministic safetensors writer, atomic writes and input expansion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from tokquant.errors import ConfigError, InputError, OutputError
from tokquant.formats._columns import column_dtype
from tokquant.formats._safetensors import write_safetensors
from tokquant.sources import expand_inputs, output_path
from tokquant.storage.atomic import atomic_path
from tokquant.tokenizer.checkpoint import load_checkpoint
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.model import Tokenizer

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_build(path):
    config = TokenizerConfig.from_yaml(path)
    config.features.dim = 40
    tok = Tokenizer(config)
    assert tok.feature_dim == 40


def test_expected_shipped_configs_exist():
    assert {p.name for p in CONFIGS} >= {"bsq-16bit.yaml", "lfq-14bit.yaml", "rvq-8x1024.yaml"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantizer": {"code_dimm": 3}}, "quantizer.code_dimm: unknown key"),
        ({"quantizr": {}}, "quantizr: unknown key"),
        ({"quantizer": {"family": "vq"}}, "quantizer.family: must be one of bsq, lfq, rvq"),
        ({"quantizer": {"code_dim": 65}}, "quantizer.code_dim: must be an integer in [1, 64]"),
        ({"quantizer": {"code_dim": "8"}}, "quantizer.code_dim: must be an integer"),
        ({"quantizer": {"family": "rvq", "num_levels": 2, "num_embeddings": [8]}},
         "quantizer.num_embeddings: list must have num_levels=2 entries"),
        ({"train": {"lr": "fast"}}, "train.lr: must be a number"),
        ({"train": {"val_fraction": 1.0}}, "train.val_fraction: must be in [0, 1)"),
        ({"projection": {"kind": "conv"}}, "projection.kind: must be one of linear, mlp, none"),
        ({"train": []}, "train: must be a mapping"),
        ({"quantizer": {"code_dim": None}}, "quantizer.code_dim: must not be null"),
        ({"frontend": {"kind": "logmel", "power": 3}}, "frontend.power: must be 1 or 2"),
        ({"frontend": {"kind": "logmel", "mel_scale": "mel"}}, "frontend.mel_scale: must be one of htk, slaney"),
        ({"frontend": {"kind": "logmel", "mel_norm": "l2"}}, "frontend.mel_norm: must be null or slaney"),
        ({"frontend": {"kind": "logmel", "reflect_pad": 201}}, "frontend.reflect_pad: must be an integer in [0, 200]"),
        ({"frontend": {"kind": "fbank", "power": 1}}, "frontend.power: a fbank front end does not read it"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        TokenizerConfig.from_dict(data)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_yaml_number_strings_and_roundtrip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\nquantizer:\n  family: lfq\n  code_dim: 5\n")
    config = TokenizerConfig.from_yaml(path)
    assert config.train.lr == 1e-3 and config.quantizer.family == "lfq"
    assert TokenizerConfig.from_dict(config.to_dict()) == config
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        TokenizerConfig.from_yaml(path)


def test_safetensors_writer_roundtrips_and_is_deterministic(tmp_path):
    arrays = {
        "b": np.arange(10, dtype=np.uint16),
        "a": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
        "c": np.array([2**40, 3], dtype=np.uint64),
        "empty": np.zeros((0, 3), np.float32),
    }
    meta = {"z": "1", "a": "two", "format": "x"}
    write_safetensors(tmp_path / "one.st", arrays, meta)
    write_safetensors(
        tmp_path / "two.st",
        dict(reversed(list(arrays.items()))),
        dict(reversed(list(meta.items()))),
    )
    assert (tmp_path / "one.st").read_bytes() == (tmp_path / "two.st").read_bytes()
    loaded = load_file(str(tmp_path / "one.st"))
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    with safe_open(str(tmp_path / "one.st"), "np") as fh:
        assert fh.metadata() == meta


def test_column_dtype_is_the_smallest_that_fits():
    assert [column_dtype(c).name for c in (2, 256, 257, 65536, 65537, 2**32, 2**32 + 1)] == [
        "uint8", "uint8", "uint16", "uint16", "uint32", "uint32", "uint64",
    ]  # fmt: skip


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with pytest.raises(OutputError, match="cannot write"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
            raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_expand_inputs_folders_lists_and_collisions(tmp_path):
    (tmp_path / "d" / "x").mkdir(parents=True)
    for name in ("d/a.npy", "d/x/b.npz", "d/skip.txt", "other/a.npy"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    items = expand_inputs([tmp_path / "d"], (".npy", ".npz"), "feature")
    assert [str(i.key) for i in items] == ["a.npy", "x/b.npz"]
    assert (
        output_path(tmp_path / "o", items[1].stem((".npy", ".npz")), ".tok")
        == tmp_path / "o/x/b.tok"
    )
    listing = tmp_path / "d" / "list.txt"
    listing.write_text("a.npy\nx/b.npz\n")
    assert [str(i.key) for i in expand_inputs([listing], (".npy", ".npz"), "feature")] == [
        "a.npy",
        "x/b.npz",
    ]
    with pytest.raises(InputError, match="would write the same output"):
        expand_inputs(
            [tmp_path / "d" / "a.npy", tmp_path / "other" / "a.npy"], (".npy",), "feature"
        )
    listing.write_text("missing.npy\n")
    with pytest.raises(InputError, match="list.txt:1: missing.npy: no such file"):
        expand_inputs([listing], (".npy",), "feature")


def test_projection_depth_round_trips_and_one_layer_keeps_its_bytes(tmp_path, corpus):
    """``projection.depth`` (hidden layers of an mlp) is stored only when it is not 1, so
    the checkpoints of one-layer projections are byte for byte what they were."""
    from tests.conftest import run_cli, write_config

    assert "depth" not in TokenizerConfig().to_dict()["projection"]
    deep = write_config(tmp_path / "deep.yaml", "bsq", projection__kind="mlp",
                        projection__depth=3, projection__hidden=32)  # fmt: skip
    ckpt = tmp_path / "deep.safetensors"
    res = run_cli("train", "--config", deep, "--data", corpus, "--out", ckpt, "--steps", "2")
    assert res.code == 0, res.err
    loaded = load_checkpoint(ckpt, torch.device("cpu")).tokenizer
    assert loaded.config.projection.depth == 3
    assert sum(isinstance(m, torch.nn.Linear) for m in loaded.project_in) == 4
    bad = write_config(tmp_path / "bad.yaml", "bsq", projection__depth=0)
    res = run_cli("train", "--config", bad, "--data", corpus, "--out", tmp_path / "x.st")
    assert res.code == 2 and "projection.depth" in res.err
