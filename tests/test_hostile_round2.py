"""Round 2 of the hostile-input sweep: each defect it found, as a test through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import run_cli, write_config
from tests.test_binary_quantizers import speechbrain_bsq_oracle
from tests.test_hostile import error_lines, no_leftovers
from tokquant.formats import corpus as corpus_format
from tokquant.formats._safetensors import write_safetensors
from tokquant.quantizers import BSQ
from tokquant.quantizers.compat import BinarySphericalQuantizer
from tokquant.runners.decode import RECORD


def _tone(path: Path, rate: int, channels: int, seconds: float = 5.0) -> None:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(str(path), np.stack([wave] * channels, axis=1), rate)


def test_mixed_rates_and_formats_encode_in_a_fresh_process(tmp_path):
    data = tmp_path / "mix"
    data.mkdir()
    _tone(data / "a [x] é.wav", 16000, 1)
    _tone(data / "b.flac", 44100, 2)
    config = tmp_path / "c.yaml"
    config.write_text("frontend: {kind: logmel}\nquantizer: {family: rvq, num_levels: 2, "
                      "num_embeddings: 16}\nprojection: {kind: none}\n"
                      "train: {steps: 3, batch_frames: 256, kmeans_iters: 2}\n")  # fmt: skip
    ckpt = tmp_path / "m.safetensors"
    cli = [sys.executable, "-m", "tokquant"]
    train = subprocess.run([*cli, "train", "-c", config, "-d", data, "-o", ckpt, "-q"],
                           capture_output=True, text=True)  # fmt: skip
    assert train.returncode == 0, train.stderr
    for _ in range(2):  # the race was in the first import of torchaudio by two loader threads
        out = tmp_path / f"o{_}"
        res = subprocess.run([*cli, "encode", ckpt, data, "--out", out, "-q", "--workers", "2"],
                             capture_output=True, text=True)  # fmt: skip
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        assert sorted(p.name for p in out.iterdir()) == [
            "a [x] é.tokens.safetensors", "b.tokens.safetensors"]  # fmt: skip


def test_long_names_fit_or_fail_alone(tmp_path, trained, corpus):
    folder = tmp_path / "L"
    folder.mkdir()
    a = np.load(corpus / "a.npy")
    np.save(folder / ("y" * 228 + ".npy"), a)  # its token file name is 247 bytes: fits
    np.save(folder / ("z" * 240 + ".npy"), a)  # 259 bytes: cannot exist
    res = run_cli("encode", trained, folder, "--out", tmp_path / "o")
    lines = error_lines(res)
    assert res.code == 1 and len(lines) == 1 and "over the file-name limit" in lines[0]
    assert (tmp_path / "o" / ("y" * 228 + ".tokens.safetensors")).is_file()
    no_leftovers(tmp_path)


def _corpus(tmp_path, trained, corpus) -> Path:
    root = tmp_path / "corpus"
    res = run_cli("encode", trained, corpus / "a.npy", corpus / "b.npy", "--out", root, "--shards")
    assert res.code == 0, res.err
    return root


def _rekey(root: Path, old: str, new: str) -> None:
    """Rename a key in the manifest and its shard, with a matching checksum."""
    manifest = json.loads((root / "manifest.json").read_text())
    shard = manifest["shards"][0]
    corpus = corpus_format.Corpus(root)
    entries = [(new if k == old else k, corpus[k]) for k, _, _ in shard["entries"]]
    path = root / shard["file"]
    corpus_format.write_shard(path, entries, checkpoint_id=manifest["checkpoint_id"],
                              cardinalities=corpus.cardinalities)  # fmt: skip
    shard["entries"] = [[new if e[0] == old else e[0], *e[1:]] for e in shard["entries"]]
    shard["sha256"] = corpus_format.sha256_of(path)
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("bad_key", ["k" * 300, "new\nline"])
def test_keys_that_cannot_be_file_names_are_flagged_and_fail_alone(tmp_path, trained, corpus,
                                                                    bad_key):  # fmt: skip
    root = _corpus(tmp_path, trained, corpus)
    _rekey(root, "a", bad_key)
    problems = json.loads(run_cli("verify", root, "--json").out)["problems"]
    assert len(problems) == 1 and ("too long" in problems[0] or "control character" in problems[0])
    res = run_cli("decode", trained, root, "--out", tmp_path / "d")
    assert res.code == 1 and len(error_lines(res)) == 1, res.err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [RECORD, "b.npy"]


def test_user_text_is_never_read_as_markup(tmp_path, trained):
    (tmp_path / "a[").mkdir()
    for name in ("a[/x].npy", "[bold]loud.npy"):
        np.save(tmp_path / name, np.zeros((5, 12), np.int16))
    res = run_cli("encode", trained, tmp_path / "a[/x].npy", tmp_path / "[bold]loud.npy",
                  "--out", tmp_path / "o")  # fmt: skip
    lines = error_lines(res)
    assert res.code == 1 and len(lines) == 2
    assert "a[/x].npy" in lines[0] and "[bold]loud.npy" in lines[1]
    res = run_cli(
        "encode", trained, tmp_path / "a[/x].npy", "--out", tmp_path / "o", "--feature-layout", "ct"
    )
    assert "[dim, frames]" not in res.err or "Traceback" not in res.err


def test_diverging_training_is_one_line_and_writes_nothing(tmp_path, corpus):
    config = write_config(tmp_path / "c.yaml", "lfq", train__steps=50, train__lr=1e30)
    res = run_cli("train", "-c", config, "-d", corpus, "-o", tmp_path / "m.safetensors")
    lines = error_lines(res)
    assert res.code == 2 and len(lines) == 1 and "training loss became" in lines[0], res.err
    assert "--lr" in lines[0] and not (tmp_path / "m.safetensors").exists()


def test_out_equal_to_the_input_folder_never_takes_its_own_outputs(tmp_path, trained, corpus):
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "a.npy", np.load(corpus / "a.npy"))
    for extra in ([], ["--overwrite"], ["--shards"], []):
        res = run_cli("encode", trained, folder, "--out", folder, *extra)
        assert res.code == 0, res.err


def test_import_refuses_non_finite_codebooks_and_non_state_dicts(tmp_path):
    embed = torch.randn(1, 8, 4)
    embed[0, 3, 1] = float("nan")
    torch.save({"layers.0._codebook.embed": embed}, tmp_path / "nan.pt")
    res = run_cli("import", "vqp", tmp_path / "nan.pt", "--out", tmp_path / "c.safetensors")
    assert res.code == 2 and "NaN or Inf" in error_lines(res)[0]
    assert not (tmp_path / "c.safetensors").exists()
    (tmp_path / "text.pt").write_text("hello")
    res = run_cli("import", "vqp", tmp_path / "text.pt", "--out", tmp_path / "c.safetensors")
    assert res.code == 2 and "not a state dict file" in error_lines(res)[0]


def test_one_shard_check_serves_verify_and_decode(tmp_path, trained, corpus):
    root = _corpus(tmp_path, trained, corpus)
    path = root / corpus_format.shard_name(0, 0)
    from safetensors import safe_open

    with safe_open(str(path), "np") as fh:
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        meta = fh.metadata()
    arrays["offsets"] = arrays["offsets"].astype(np.float32)
    write_safetensors(path, arrays, meta)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = corpus_format.sha256_of(path)
    (root / "manifest.json").write_text(json.dumps(manifest))
    problems = json.loads(run_cli("verify", root, "--json").out)["problems"]
    assert len(problems) == 1 and "offsets do not match" in problems[0]
    res = run_cli("decode", trained, root, "--out", tmp_path / "d")
    lines = error_lines(res)
    assert res.code == 1 and len(lines) == 1 and "offsets do not match" in lines[0]  # once


def test_decode_and_stats_check_shard_checksums(tmp_path, trained, corpus):
    root = _corpus(tmp_path, trained, corpus)
    path = root / corpus_format.shard_name(0, 0)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one code changes; the manifest still has the old checksum
    path.write_bytes(bytes(data))
    for command in (["decode", trained, root, "--out", tmp_path / "d"], ["stats", trained, root]):
        res = run_cli(*command)
        assert res.code == 1 and "checksum does not match" in error_lines(res)[0], res.err


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path, trained, corpus):
    out = tmp_path / "o"
    out.mkdir()
    dead = 4_194_000  # above any live pid here
    stale = [out / f".tq-{_host()}-{dead}-4.tmp"]
    live = out / f".tq-{_host()}-{os.getpid()}-9.tmp"  # this process: still writing
    # tokquant 0.1's temp names look like a user's hidden file: those are never touched
    users = out / f".u0223.tokens.safetensors.{dead}.4.tmp"
    for p in [*stale, live, users]:
        p.write_bytes(b"partial")
    assert run_cli("encode", trained, corpus / "a.npy", "--out", out).code == 0
    assert not any(p.exists() for p in stale) and live.exists() and users.exists()


def _host() -> str:
    from tokquant.storage import atomic

    return atomic._HOST


def test_misleading_messages_fixed(tmp_path, trained, corpus, monkeypatch):
    audio = tmp_path / "au"
    audio.mkdir()
    _tone(audio / "a.ogg", 16000, 1, 0.5)
    _tone(audio / "a.flac", 16000, 1, 0.5)
    config = tmp_path / "c.yaml"
    config.write_text("frontend: {kind: logmel}\nquantizer: {code_dim: 4}\ntrain: {steps: 1}\n")
    res = run_cli("train", "-c", config, "-d", audio / "a.flac", "-o", tmp_path / "m.safetensors")
    assert res.code == 0, res.err
    res = run_cli("encode", tmp_path / "m.safetensors", audio, "--out", tmp_path / "o")
    assert res.code == 2 and "rename one of them" in error_lines(res)[0]
    assert "is a folder" in error_lines(run_cli("info", tmp_path))[0]
    res = run_cli("train", "-c", config, "-d", audio / "a.flac", "-o", tmp_path, "--overwrite")
    assert res.code == 2 and "is a folder" in error_lines(res)[0]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    res = run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path / "r")
    assert res.code == 2 and "WORLD_SIZE is not" in error_lines(res)[0]


def test_usage_errors_and_refused_pickles_are_one_line(tmp_path, corpus):
    res = subprocess.run([sys.executable, "-m", "tokquant", "verify", "--quiet"],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--quiet" in res.stderr
    torch.save({"config": {}, "state_dict": {}, "x": object()}, tmp_path / "p.pt")
    res = subprocess.run([sys.executable, "-m", "tokquant", "encode", tmp_path / "p.pt",
                          corpus / "a.npy", "--out", tmp_path / "o"], capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr


def test_stats_fails_a_foreign_token_file_alone_like_decode(tmp_path, trained, corpus):
    config = write_config(tmp_path / "c.yaml", train__steps=2, train__seed=7)
    other = tmp_path / "other.safetensors"
    assert run_cli("train", "-c", config, "-d", corpus, "-o", other).code == 0
    run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path / "t")
    run_cli("encode", other, corpus / "b.npy", "--out", tmp_path / "t")
    for command in ("decode", "stats"):
        extra = ["--out", tmp_path / "d"] if command == "decode" else ["--json"]
        res = run_cli(command, trained, tmp_path / "t", *extra)
        assert res.code == 1 and len(error_lines(res)) == 1 and "made by checkpoint" in res.err


def test_speechbrain_drop_in_indexes_like_a_tuple_with_its_shapes():
    x = torch.randn(2, 30, 10)
    q = BinarySphericalQuantizer(10)
    quantized, indices, aux = q(x)
    ref_q, ref_idx, ref_aux = speechbrain_bsq_oracle(x)
    assert indices.shape == (2, 30) and torch.equal(indices, ref_idx)
    assert torch.allclose(quantized.double(), ref_q) and abs(float(aux) - float(ref_aux)) < 1e-5
    assert torch.equal(q(x)[0], quantized) and torch.equal(q.decode(indices), quantized)
    out = BSQ(10)(x)
    assert torch.equal(out[0], out.quantized) and torch.equal(out[1], out.indices) and len(out) == 3


def test_spurious_ast_recursion_error_of_python_311_is_retried(tmp_path, monkeypatch):
    """CPython 3.11's AST depth counter is shared by threads (python/cpython#106905):
    numpy's .npy header parse in a loader thread could fail with a SystemError while
    another thread parsed, and that file failed encode. It is retried; any other
    SystemError is still the file's failure."""
    import numpy as np

    from tokquant.errors import InputError
    from tokquant.formats import features

    path = tmp_path / "a.npy"
    np.save(path, np.ones((4, 3), np.float32))
    real, calls = features._LOADERS[".npy"], []

    def flaky(p):
        calls.append(p)
        if len(calls) < 3:
            raise SystemError("AST constructor recursion depth mismatch (before=42, after=38)")
        return real(p)

    monkeypatch.setitem(features._LOADERS, ".npy", flaky)
    assert features.read_features(path).shape == (4, 3) and len(calls) == 3

    def broken(p):
        raise SystemError("something else")

    monkeypatch.setitem(features._LOADERS, ".npy", broken)
    with pytest.raises(InputError, match="cannot read .npy features"):
        features.read_features(path)
