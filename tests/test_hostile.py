"""Every bad-input case in the README's table: what the user sees, and that nothing is lost.

Each case runs the real CLI and checks the exit code, the one-line message, that no
traceback is printed, and that no partial or temporary file is left behind.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.conftest import run_cli, write_config
from tokquant.formats import tokens as tokens_format
from tokquant.formats._safetensors import write_safetensors


def no_leftovers(root: Path) -> None:
    assert not [p for p in root.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def error_lines(res) -> list[str]:
    assert "Traceback" not in res.err
    return [line for line in res.err.splitlines() if line.startswith("error:")]


def retag_checkpoint(
    src: Path, dst: Path, *, meta_update=None, config_update=None, drop=None
) -> Path:
    with safe_open(str(src), "pt") as fh:
        meta = dict(fh.metadata())
    tensors = load_file(str(src))
    if meta_update:
        meta.update(meta_update)
    if config_update:
        config = json.loads(meta["config"])
        config["quantizer"].update(config_update)
        meta["config"] = json.dumps(config)
    for name in drop or []:
        tensors.pop(name)
    save_file(tensors, str(dst), metadata=meta)
    return dst


@pytest.fixture
def tokens_dir(tmp_path, trained, corpus) -> Path:
    run_cli("encode", trained, corpus / "a.npy", corpus / "b.npy", "--out", tmp_path / "tok")
    return tmp_path / "tok"


# (case, how to make it, command, exit code, message) -------------------------------


def case_missing_file(tmp, ckpt, corpus):
    return (
        ["encode", ckpt, tmp / "nope.npy", "--out", tmp / "o"],
        2,
        "nope.npy: no such file or folder",
    )


def case_empty_directory(tmp, ckpt, corpus):
    (tmp / "empty").mkdir()
    return ["encode", ckpt, tmp / "empty", "--out", tmp / "o"], 2, "no feature files"


def case_zero_frames(tmp, ckpt, corpus):
    np.save(tmp / "z.npy", np.zeros((0, 12), np.float32))
    return ["encode", ckpt, tmp / "z.npy", "--out", tmp / "o"], 1, "z.npy: no frames"


def case_empty_file(tmp, ckpt, corpus):
    (tmp / "e.npy").write_bytes(b"")
    return (
        ["encode", ckpt, tmp / "e.npy", "--out", tmp / "o"],
        1,
        "e.npy: cannot read .npy features",
    )


def case_wrong_dim(tmp, ckpt, corpus):
    np.save(tmp / "w.npy", np.zeros((7, 5), np.float32))
    return (
        ["encode", ckpt, tmp / "w.npy", "--out", tmp / "o"],
        1,
        "w.npy: features have dim 5, the checkpoint expects 12",
    )


def case_nan(tmp, ckpt, corpus):
    x = np.ones((9, 12), np.float32)
    x[6, 1] = np.nan
    np.save(tmp / "n.npy", x)
    return (
        ["encode", ckpt, tmp / "n.npy", "--out", tmp / "o"],
        1,
        "n.npy: NaN or Inf in features, first at frame 6",
    )


def case_inf(tmp, ckpt, corpus):
    x = np.ones((9, 12), np.float32)
    x[2, 0] = -np.inf
    np.save(tmp / "i.npy", x)
    return (
        ["encode", ckpt, tmp / "i.npy", "--out", tmp / "o"],
        1,
        "i.npy: NaN or Inf in features, first at frame 2",
    )


def case_int_features(tmp, ckpt, corpus):
    np.save(tmp / "int.npy", np.ones((9, 12), np.int32))
    return (
        ["encode", ckpt, tmp / "int.npy", "--out", tmp / "o"],
        1,
        "features must be floating point, found dtype int32",
    )


def case_truncated_tokens(tmp, ckpt, corpus):
    run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp / "t")
    path = tmp / "t" / "a.tokens.safetensors"
    path.write_bytes(path.read_bytes()[:-7])
    return (
        ["decode", ckpt, path, "--out", tmp / "o"],
        1,
        "a.tokens.safetensors: not a readable token file",
    )


def case_corrupt_tokens(tmp, ckpt, corpus):
    (tmp / "g.tokens.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    return (
        ["decode", ckpt, tmp / "g.tokens.safetensors", "--out", tmp / "o"],
        1,
        "not a readable token file",
    )


def case_other_checkpoint(tmp, ckpt, corpus):
    other = tmp / "other.safetensors"
    run_cli("train", "-c", write_config(tmp / "c.yaml", train__seed=9), "-d", corpus, "-o", other)
    run_cli("encode", other, corpus / "a.npy", "--out", tmp / "t")
    return (
        ["decode", ckpt, tmp / "t", "--out", tmp / "o"],
        1,
        "a.tokens.safetensors: made by checkpoint",
    )


def case_codes_out_of_range(tmp, ckpt, corpus):
    run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp / "t")
    path = tmp / "t" / "a.tokens.safetensors"
    with safe_open(str(path), "np") as fh:
        meta = fh.metadata()
    codes = np.full(120, 300, np.uint16)  # the column holds 256 codes
    write_safetensors(path, {"codes.0": codes}, meta)
    return ["decode", ckpt, path, "--out", tmp / "o"], 1, "holds code 300, out of range [0, 256)"


def case_not_a_checkpoint(tmp, ckpt, corpus):
    bad = retag_checkpoint(ckpt, tmp / "k.safetensors", meta_update={"format": "something-else"})
    return (
        ["encode", bad, corpus / "a.npy", "--out", tmp / "o"],
        2,
        "not a tokquant checkpoint (format 'something-else')",
    )


def case_unknown_quantizer(tmp, ckpt, corpus):
    bad = retag_checkpoint(ckpt, tmp / "k.safetensors", config_update={"family": "pq"})
    return (
        ["encode", bad, corpus / "a.npy", "--out", tmp / "o"],
        2,
        "quantizer.family: must be one of bsq, lfq, rvq",
    )


def case_missing_tensors(tmp, ckpt, corpus):
    bad = retag_checkpoint(ckpt, tmp / "k.safetensors", drop=["std"])
    return ["encode", bad, corpus / "a.npy", "--out", tmp / "o"], 2, "missing tensors std"


def case_hostile_config_shapes(tmp, ckpt, corpus):
    bad = retag_checkpoint(
        ckpt, tmp / "k.safetensors", config_update={"code_dim": 64, "group_size": 8}
    )
    return (
        ["encode", bad, corpus / "a.npy", "--out", tmp / "o"],
        2,
        "has shape [8] torch.float32, expected [64] float",
    )


def case_pickle_checkpoint(tmp, ckpt, corpus):
    torch.save({"config": {}, "state_dict": {}, "x": object()}, tmp / "p.pt")
    return (
        ["encode", tmp / "p.pt", corpus / "a.npy", "--out", tmp / "o"],
        2,
        "refused to load .pt (weights-only)",
    )


def case_output_dir_is_a_file(tmp, ckpt, corpus):
    (tmp / "file").write_text("x")
    return (
        ["encode", ckpt, corpus / "a.npy", "--out", tmp / "file"],
        2,
        "cannot create the output folder",
    )


def case_output_equals_input(tmp, ckpt, corpus):
    np.save(tmp / "d.npy", np.load(corpus / "a.npy"))
    config = write_config(tmp / "c.yaml", train__steps=1)
    return (
        ["train", "-c", config, "-d", tmp / "d.npy", "-o", tmp / "d.npy", "--overwrite"],
        2,
        "output path equals an input",
    )


def case_bad_config_value(tmp, ckpt, corpus):
    (tmp / "c.yaml").write_text("quantizer:\n  family: bsq\n  code_dim: 0\n")
    return (
        ["train", "-c", tmp / "c.yaml", "-d", corpus, "-o", tmp / "m.safetensors"],
        2,
        "quantizer.code_dim: must be an integer in [1, 64]",
    )


CASES = [v for k, v in dict(globals()).items() if k.startswith("case_")]


@pytest.mark.parametrize("make", CASES, ids=lambda f: f.__name__[5:])
def test_bad_input_case(tmp_path, trained, corpus, make):
    args, code, message = make(tmp_path, trained, corpus)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    res = run_cli(*args)
    lines = error_lines(res)
    assert res.code == code, res.err
    assert any(message in line for line in lines), res.err
    no_leftovers(tmp_path)
    for path, data in before.items():  # inputs are never changed
        assert path.read_bytes() == data, path


def test_disk_full_stops_cleanly_and_keeps_finished_outputs(tmp_path, trained, corpus, monkeypatch):
    writes = {"n": 0}
    real = tokens_format.write_safetensors

    def flaky(path, arrays, metadata):
        writes["n"] += 1
        if writes["n"] == 3:  # the third file hits a full disk half-way through
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, arrays, metadata)

    monkeypatch.setattr(tokens_format, "write_safetensors", flaky)
    res = run_cli("encode", trained, corpus, "--out", tmp_path / "o", "--batch-frames", "1")
    assert res.code == 2
    assert "No space left on device" in error_lines(res)[-1]
    written = sorted(p.name for p in (tmp_path / "o").rglob("*") if p.is_file())
    # the failed file is absent; files already queued may have finished (writes overlap)
    assert "c.tokens.safetensors" not in written and 2 <= len(written) <= 3
    assert all(n.endswith(".tokens.safetensors") for n in written)
    for p in (tmp_path / "o").rglob("*.tokens.safetensors"):
        tokens_format.read_tokens(p)  # whole, readable
    no_leftovers(tmp_path)
    monkeypatch.setattr(tokens_format, "write_safetensors", real)
    res = run_cli("encode", trained, corpus, "--out", tmp_path / "o", "--json")  # resume
    assert res.code == 0 and json.loads(res.out)["files_skipped"] == len(written)
