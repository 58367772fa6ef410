"""The real CLI end to end: train, encode, decode, stats, info, and every error path."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from tests.conftest import content_id, make_features, run_cli, write_config
from tokquant.formats.tokens import read_tokens
from tokquant.tokenizer.checkpoint import load_checkpoint

FEATURE_FILES = ["a.npy", "b.npy", "sub/c.npy", "sub/deeper/d.npy"]


def tokens_of(out: Path, name: str) -> Path:
    return out / name.replace(".npy", ".tokens.safetensors")


def one_line_error(result) -> str:
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.err
    return lines[-1]


# ---------------------------------------------------------------- train / encode / decode


@pytest.mark.parametrize("family", ["bsq", "lfq", "rvq"])
def test_train_encode_decode_match_the_library_exactly(tmp_path, corpus, family):
    ckpt = tmp_path / "model.safetensors"
    config = write_config(tmp_path / "c.yaml", family)
    res = run_cli("train", "--config", config, "--data", corpus, "--out", ckpt, "--json")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["steps"] == 40 and summary["checkpoint_id"] == content_id(ckpt)

    res = run_cli("encode", ckpt, corpus, "--out", tmp_path / "tok")
    assert res.code == 0, res.err
    res = run_cli("decode", ckpt, tmp_path / "tok", "--out", tmp_path / "dec")
    assert res.code == 0, res.err

    model = load_checkpoint(ckpt).tokenizer
    for name in FEATURE_FILES:
        features = torch.from_numpy(np.load(corpus / name))
        tokens = read_tokens(tokens_of(tmp_path / "tok", name))
        # the quantizer forward (eval) on the same features gives the same codes ...
        z = model.project_in(model.normalize(features))
        forward = model.quantizer(z)
        assert np.array_equal(tokens.codes, forward.indices.numpy())
        assert tokens.num_frames == len(features) and tokens.frame_rate == 50.0
        # ... and decode gives exactly the forward reconstruction, denormalised
        decoded = np.load(tmp_path / "dec" / name)
        expected = (model.project_out(forward.quantized) * model.std + model.mean).detach().numpy()
        assert decoded.dtype == np.float32 and np.array_equal(decoded, expected)


def test_rvq_reconstruction_beats_mean_and_uses_codes(tmp_path, corpus):
    ckpt = tmp_path / "rvq.safetensors"
    run_cli(
        "train",
        "--config",
        write_config(tmp_path / "c.yaml", "rvq"),
        "--data",
        corpus,
        "--out",
        ckpt,
    )
    run_cli("encode", ckpt, corpus, "--out", tmp_path / "tok")
    res = run_cli("stats", ckpt, tmp_path / "tok", "--features", corpus, "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["reconstruction"]["snr_db"] > 10  # clustered data: k-means nails it
    assert report["columns"][0]["used"] >= 6


def test_training_is_deterministic_with_seed(tmp_path, corpus):
    config = write_config(tmp_path / "c.yaml")
    ids = []
    for name in ("one", "two"):
        res = run_cli("train", "-c", config, "-d", corpus, "-o", tmp_path / f"{name}.safetensors",
                      "--seed", "7", "--json")  # fmt: skip
        ids.append(json.loads(res.out)["checkpoint_id"])
    assert ids[0] == ids[1]
    res = run_cli(
        "train",
        "-c",
        config,
        "-d",
        corpus,
        "-o",
        tmp_path / "three.safetensors",
        "--seed",
        "8",
        "--json",
    )
    assert json.loads(res.out)["checkpoint_id"] != ids[0]


def test_data_accepts_several_paths_after_one_flag_and_list_files(tmp_path, corpus):
    listing = tmp_path / "train.txt"
    listing.write_text(f"# a comment\n{corpus / 'a.npy'}\n\n{corpus / 'b.npy'}\n")
    config = write_config(tmp_path / "c.yaml", train__steps=2)
    res = run_cli("train", "-c", config, "--data", corpus / "sub" / "c.npy", listing, corpus / "sub",
                  "-o", tmp_path / "m.safetensors", "--json")  # fmt: skip
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    # sub/c.npy is named and inside sub/: it counts once
    assert summary["train_frames"] + summary["val_frames"] == 120 + 90 + 75 + 60


def test_encode_mirrors_tree_skips_existing_and_overwrites(tmp_path, trained, corpus):
    out = tmp_path / "tok"
    res = run_cli("encode", trained, corpus, "--out", out, "--json")
    assert res.code == 0
    report = json.loads(res.out)
    assert (
        report["files_encoded"] == 4 and report["frames"] == 345 and report["bits_per_frame"] == 8
    )
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.safetensors")) == sorted(
        n.replace(".npy", ".tokens.safetensors") for n in FEATURE_FILES
    )
    target = tokens_of(out, "a.npy")
    os.utime(target, (1, 1))
    res = run_cli("encode", trained, corpus, "--out", out, "--json")
    assert json.loads(res.out)["files_skipped"] == 4 and target.stat().st_mtime == 1
    res = run_cli("encode", trained, corpus / "a.npy", "--out", out, "--overwrite", "--json")
    assert json.loads(res.out)["files_encoded"] == 1 and target.stat().st_mtime > 1
    assert not list(out.rglob("*.tmp"))


def test_layout_ct_reads_transposed_files(tmp_path, trained, corpus):
    x = np.load(corpus / "a.npy")
    np.save(tmp_path / "a.npy", x.T.copy())
    run_cli(
        "encode", trained, tmp_path / "a.npy", "--out", tmp_path / "ct", "--feature-layout", "ct"
    )
    run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path / "tc")
    assert np.array_equal(
        read_tokens(tmp_path / "ct" / "a.tokens.safetensors").codes,
        read_tokens(tmp_path / "tc" / "a.tokens.safetensors").codes,
    )


def test_checkpoint_remembers_the_training_layout(tmp_path, corpus):
    for name in FEATURE_FILES:
        target = tmp_path / "ct" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, np.load(corpus / name).T.copy())
    config = write_config(tmp_path / "c.yaml", train__steps=2)
    ckpt = tmp_path / "m.safetensors"
    assert (
        run_cli(
            "train", "-c", config, "-d", tmp_path / "ct", "-o", ckpt, "--feature-layout", "ct"
        ).code
        == 0
    )
    assert json.loads(run_cli("info", ckpt, "--json").out)["config"]["features"]["layout"] == "ct"
    assert run_cli("encode", ckpt, tmp_path / "ct", "--out", tmp_path / "t1").code == 0  # no flag
    assert (
        run_cli("encode", ckpt, corpus, "--out", tmp_path / "t2", "--feature-layout", "tc").code
        == 0
    )
    for name in FEATURE_FILES:
        assert np.array_equal(read_tokens(tokens_of(tmp_path / "t1", name)).codes,
                              read_tokens(tokens_of(tmp_path / "t2", name)).codes)  # fmt: skip


@pytest.mark.parametrize("suffix", [".npz", ".pt", ".safetensors"])
def test_other_feature_formats_encode_like_npy(tmp_path, trained, corpus, suffix):
    x = np.load(corpus / "b.npy")
    path = tmp_path / f"b{suffix}"
    if suffix == ".npz":
        np.savez(path, features=x, other=x[:2])
    elif suffix == ".pt":
        torch.save(torch.from_numpy(x), path)
    else:
        from safetensors.numpy import save_file

        save_file({"features": x}, str(path))
    assert run_cli("encode", trained, path, "--out", tmp_path / "o").code == 0
    run_cli("encode", trained, corpus / "b.npy", "--out", tmp_path / "ref")
    got = read_tokens(tmp_path / "o" / "b.tokens.safetensors").codes
    assert np.array_equal(got, read_tokens(tmp_path / "ref" / "b.tokens.safetensors").codes)


# ---------------------------------------------------------------- token file format


def test_token_file_is_readable_with_plain_numpy_and_safetensors(tmp_path, trained, corpus):
    run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path)
    path = tmp_path / "a.tokens.safetensors"
    arrays = load_file(str(path))
    with safe_open(str(path), "np") as fh:
        meta = fh.metadata()
    assert list(arrays) == ["codes.0"] and arrays["codes.0"].dtype == np.uint8  # 8 bits
    assert meta["format"] == "tokquant-tokens" and meta["format_version"] == "1"
    assert meta["checkpoint_id"] == content_id(trained)
    assert int(meta["num_frames"]) == 120 and float(meta["frame_rate"]) == 50.0
    assert json.loads(meta["columns"]) == [
        {"name": "bits0-7", "cardinality": 256, "bits": 8, "dtype": "uint8"}
    ]
    assert json.loads(meta["quantizer"])["family"] == "bsq"
    assert meta["source"].endswith("a.npy")


def test_rvq_columns_use_smallest_dtype_each(tmp_path, corpus):
    config = write_config(tmp_path / "c.yaml", "rvq", quantizer__num_embeddings=[300, 8, 8],
                          train__steps=1)  # fmt: skip
    ckpt = tmp_path / "r.safetensors"
    assert run_cli("train", "-c", config, "-d", corpus, "-o", ckpt).code == 0
    run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp_path)
    arrays = load_file(str(tmp_path / "a.tokens.safetensors"))
    assert [arrays[f"codes.{g}"].dtype for g in range(3)] == [np.uint16, np.uint8, np.uint8]


# ---------------------------------------------------------------- stats and info


def test_stats_numbers_equal_a_hand_computation(tmp_path, trained, corpus):
    run_cli("encode", trained, corpus, "--out", tmp_path / "tok")
    run_cli("decode", trained, tmp_path / "tok", "--out", tmp_path / "dec")
    res = run_cli("stats", trained, tmp_path / "tok", "--features", corpus, "--json", "--top", "3")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    codes = np.concatenate(
        [read_tokens(tokens_of(tmp_path / "tok", n)).codes[:, 0] for n in sorted(FEATURE_FILES)]
    )
    counts = Counter(codes.tolist())
    n = len(codes)
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    col = report["columns"][0]
    assert col["tokens"] == n == report["frames"] == 345
    assert col["used"] == len(counts) and col["dead"] == 256 - len(counts)
    assert col["usage"] == pytest.approx(len(counts) / 256)
    assert col["entropy_bits"] == pytest.approx(entropy, rel=1e-12)
    assert col["perplexity"] == pytest.approx(2**entropy, rel=1e-12)
    assert col["max_entropy_bits"] == 8
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [tuple(t) for t in col["top"]] == top
    ref = np.concatenate([np.load(corpus / n) for n in sorted(FEATURE_FILES)]).astype(np.float64)
    est = np.concatenate([np.load(tmp_path / "dec" / n) for n in sorted(FEATURE_FILES)]).astype(
        np.float64
    )
    rec = report["reconstruction"]
    assert rec["mse"] == pytest.approx(((ref - est) ** 2).mean(), rel=1e-9)
    assert rec["snr_db"] == pytest.approx(
        10 * np.log10((ref**2).sum() / ((ref - est) ** 2).sum()), rel=1e-9
    )
    cos = (ref * est).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(est, axis=1))
    assert rec["cosine"] == pytest.approx(cos.mean(), rel=1e-9)


def test_stats_table_and_plot(tmp_path, trained, corpus):
    pytest.importorskip("matplotlib")
    run_cli("encode", trained, corpus, "--out", tmp_path / "tok")
    res = run_cli("stats", trained, tmp_path / "tok", "--plot", tmp_path / "usage.png")
    assert res.code == 0, res.err
    assert "bits0-7" in res.out and "perplexity" in res.out
    assert (tmp_path / "usage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_describes_checkpoint_and_token_file(tmp_path, trained, corpus):
    res = run_cli("info", trained, "--json")
    data = json.loads(res.out)
    assert data["kind"] == "checkpoint" and data["config"]["quantizer"]["code_dim"] == 8
    assert data["id"] == content_id(trained)
    assert data["tensors"]["project_in.weight"] == [8, 12]
    run_cli("encode", trained, corpus / "b.npy", "--out", tmp_path)
    res = run_cli("info", tmp_path / "b.tokens.safetensors")
    assert res.code == 0 and "tokens" in res.out and "90" in res.out
    data = json.loads(run_cli("info", tmp_path / "b.tokens.safetensors", "--json").out)
    assert (
        data["num_frames"] == 90
        and data["checkpoint_id"] == json.loads(run_cli("info", trained, "--json").out)["id"]
    )


# ---------------------------------------------------------------- errors


def test_decode_refuses_tokens_of_another_checkpoint(tmp_path, trained, corpus):
    other = tmp_path / "other.safetensors"
    run_cli(
        "train", "-c", write_config(tmp_path / "c.yaml", train__seed=3), "-d", corpus, "-o", other
    )
    run_cli("encode", trained, corpus / "a.npy", corpus / "b.npy", "--out", tmp_path / "tok")
    run_cli("encode", other, corpus / "b.npy", "--out", tmp_path / "tok", "--overwrite")
    res = run_cli("decode", other, tmp_path / "tok", "--out", tmp_path / "dec")
    assert res.code == 1
    assert "a.tokens.safetensors: made by checkpoint" in res.err
    assert (tmp_path / "dec" / "b.npy").exists() and not (tmp_path / "dec" / "a.npy").exists()


def test_bad_inputs_fail_alone_with_exit_1(tmp_path, trained, corpus):
    bad = tmp_path / "in"
    make_features(bad)
    np.save(bad / "wrong_dim.npy", np.zeros((10, 5), np.float32))
    x = np.ones((10, 12), np.float32)
    x[4, 3] = np.nan
    np.save(bad / "nan.npy", x)
    np.save(bad / "ints.npy", np.ones((10, 12), np.int64))
    np.save(bad / "empty.npy", np.zeros((0, 12), np.float32))
    (bad / "corrupt.npy").write_bytes(b"not numpy at all")
    res = run_cli("encode", trained, bad, "--out", tmp_path / "tok")
    assert res.code == 1
    assert "wrong_dim.npy: features have dim 5, the checkpoint expects 12" in res.err
    assert "nan.npy: NaN or Inf in features, first at frame 4" in res.err
    assert "ints.npy: features must be floating point, found dtype int64" in res.err
    assert "empty.npy: no frames" in res.err
    assert "corrupt.npy: cannot read .npy features" in res.err
    assert "Traceback" not in res.err
    assert len(list((tmp_path / "tok").rglob("*.tokens.safetensors"))) == 4  # the good ones
    assert not list((tmp_path / "tok").rglob("*.tmp")) and not list(tmp_path.glob("tok/.*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["encode", "{ckpt}", "{tmp}/missing.npy", "--out", "{tmp}/o"],
            "missing.npy: no such file or folder",
        ),
        (
            ["encode", "{tmp}/nope.safetensors", "{corpus}", "--out", "{tmp}/o"],
            "nope.safetensors: checkpoint not found",
        ),
        (["encode", "{ckpt}", "{tmp}/emptydir", "--out", "{tmp}/o"], "no feature files"),
        (
            ["encode", "{ckpt}", "{corpus}", "--out", "{tmp}/o", "--device", "cuda:0"],
            "--device cuda:0",
        ),
        (
            ["encode", "{ckpt}", "{corpus}", "--out", "{tmp}/o", "--device", "tpu"],
            "--device must be cpu, cuda, cuda:N or auto",
        ),
        (
            ["train", "-c", "{tmp}/bad.yaml", "-d", "{corpus}", "-o", "{tmp}/m.safetensors"],
            "quantizer.code_dimm: unknown key",
        ),
        (
            ["train", "-c", "{tmp}/worse.yaml", "-d", "{corpus}", "-o", "{tmp}/m.safetensors"],
            "train.lr: must be a finite number > 0",
        ),
        (
            ["train", "-c", "{tmp}/good.yaml", "-d", "{corpus}", "-o", "{ckpt}"],
            "exists; pass --overwrite",
        ),
        (["info", "{corpus}/a.npy"], "neither a tokquant checkpoint, vocoder nor token file"),
        (["decode", "{corpus}/a.npy", "{corpus}", "--out", "{tmp}/o"], "not a tokquant checkpoint"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, trained, corpus, args, message):
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "bad.yaml").write_text("quantizer:\n  code_dimm: 8\n")
    (tmp_path / "worse.yaml").write_text("train:\n  lr: -1\n")
    write_config(tmp_path / "good.yaml")
    if "--device" in args and args[-1] == "cuda:0" and torch.cuda.is_available():
        pytest.skip("CUDA present")
    fmt = {"ckpt": trained, "tmp": tmp_path, "corpus": corpus}
    res = run_cli(*[a.format(**fmt) for a in args])
    assert res.code == 2, res.err
    line = one_line_error(res)
    assert line.startswith("error: ") and message in line
    assert res.err.count("error:") == 1


def test_output_path_equal_to_input_is_refused(tmp_path, trained, corpus):
    run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path)
    res = run_cli(
        "decode", trained, tmp_path / "a.tokens.safetensors", "--out", tmp_path, "--overwrite"
    )
    assert res.code == 0  # a.npy next to the tokens: different file, fine
    np.save(tmp_path / "x.npy", np.load(corpus / "a.npy"))
    tok = tmp_path / "x.tokens.safetensors"
    tok.write_bytes(b"")
    # encode into the folder of its inputs writes x.tokens.safetensors beside x.npy; the
    # empty token file is an existing output, never read as input: no run wrote it, so
    # it is neither skipped as done nor replaced without --overwrite (issue 29, #31)
    res = run_cli("encode", trained, tmp_path / "x.npy", "--out", tmp_path)
    assert res.code == 2 and "not a readable token file" in res.err and "--overwrite" in res.err
    assert tok.read_bytes() == b""


def test_corrupt_and_out_of_range_token_files(tmp_path, trained, corpus):
    run_cli("encode", trained, corpus / "a.npy", corpus / "b.npy", "--out", tmp_path / "tok")
    good = (tmp_path / "tok" / "a.tokens.safetensors").read_bytes()
    (tmp_path / "tok" / "a.tokens.safetensors").write_bytes(good[: len(good) // 2])
    res = run_cli("decode", trained, tmp_path / "tok", "--out", tmp_path / "dec")
    assert res.code == 1 and "a.tokens.safetensors: not a readable token file" in res.err
    assert (tmp_path / "dec" / "b.npy").exists()


def test_pt_checkpoints_load_weights_only_and_pickles_are_refused(tmp_path, trained):
    ckpt = load_checkpoint(trained)
    pt = tmp_path / "model.pt"
    torch.save(
        {"config": ckpt.tokenizer.config.to_dict(), "state_dict": ckpt.tokenizer.state_dict()}, pt
    )
    loaded = load_checkpoint(pt).tokenizer
    x = torch.randn(20, 12)
    assert torch.equal(loaded.encode(x), ckpt.tokenizer.encode(x))

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"config": {}, "state_dict": {}, "x": Evil()}, tmp_path / "evil.pt")
    res = run_cli("encode", tmp_path / "evil.pt", tmp_path, "--out", tmp_path / "o")
    assert res.code == 2 and "refused to load .pt (weights-only)" in one_line_error(res)
    assert not (tmp_path / "pwned").exists()


def test_checkpoint_with_missing_tensors_is_refused(tmp_path, trained):
    from safetensors.torch import load_file as load_pt
    from safetensors.torch import save_file

    with safe_open(str(trained), "pt") as fh:
        meta = fh.metadata()
    tensors = load_pt(str(trained))
    del tensors["project_out.weight"]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata=meta)
    res = run_cli("encode", broken, tmp_path, "--out", tmp_path / "o")
    assert res.code == 2 and "missing tensors project_out.weight" in one_line_error(res)


def test_debug_shows_the_traceback(tmp_path, trained):
    with pytest.raises(Exception, match="file not found"):
        from tokquant.cli.app import main

        main(["--debug", "info", str(tmp_path / "nothing")])
    # the flag is read through Typer: it does not outlive its run, and a path that
    # happens to be called --debug is no flag
    res = run_cli("info", tmp_path / "nothing")
    assert res.code == 2 and one_line_error(res).endswith("file not found")
    res = run_cli("info", "--", "--debug")
    assert res.code == 2 and one_line_error(res) == "error: --debug: file not found"


# ---------------------------------------------------------------- process level


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from tokquant.cli.app import app; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
    res = subprocess.run(
        [sys.executable, "-m", "tokquant", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "encode" in res.stdout


def test_real_process_error_has_no_traceback(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "tokquant", "info", str(tmp_path / "missing.safetensors")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: {tmp_path / 'missing.safetensors'}: file not found"


def test_device_resolution(monkeypatch):
    from tokquant.devices import resolve_device
    from tokquant.errors import DeviceError

    assert resolve_device("cpu").type == "cpu" and resolve_device(" CPU ").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("cuda:3") == torch.device("cuda", 3)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda") == torch.device("cuda", 2)  # torchrun: one GPU per rank
    assert resolve_device("auto") == torch.device("cuda", 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="only 4 CUDA device"):
        resolve_device("cuda:4")
