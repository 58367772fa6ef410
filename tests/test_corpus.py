"""Corpus scale: batched encode, shards and manifest, ranks, verify, merge, resume after kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import encode_file, run_cli
from tokquant.api import load
from tokquant.errors import FormatError, InputError
from tokquant.formats import corpus as corpus_format
from tokquant.formats.corpus import Corpus, verify_corpus
from tokquant.formats.features import SUFFIXES
from tokquant.formats.tokens import read_tokens
from tokquant.runners.batcher import encode_items
from tokquant.runners.ranks import rank_items, resolve_rank
from tokquant.sources import expand_inputs


def many_files(root: Path, count: int, dim: int = 12, frames=(5, 400), seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(count):
        path = root / f"spk{i % 3}" / f"utt{i:04d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.standard_normal((int(rng.integers(*frames)), dim)).astype(np.float32) * 2)
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize("batch_frames", [1, 700, 1 << 20])
def test_batched_codes_equal_each_file_alone(tmp_path, trained, batch_frames):
    files = many_files(tmp_path / "in", 25)
    ckpt = load(trained)
    items = expand_inputs([files], SUFFIXES, "feature")
    results = list(encode_items(ckpt, items, batch_frames=batch_frames, workers=3))
    assert [r.item for r in results] == items
    for r in results:
        alone = encode_file(ckpt, r.item.path, tmp_path / "alone.tokens.safetensors")
        assert r.error is None and np.array_equal(r.codes, alone)


def test_batched_audio_codes_equal_each_file_alone(tmp_path):
    from tests.test_audio import SAMPLES, logmel_config

    ckpt_path = tmp_path / "a.safetensors"
    assert run_cli("train", "-c", logmel_config(tmp_path, "rvq"), "-d", SAMPLES / "sc_m", "-o",
                   ckpt_path, "--steps", "3").code == 0  # fmt: skip
    ckpt = load(ckpt_path)
    items = expand_inputs([SAMPLES], (".flac",), "audio")
    for r in encode_items(ckpt, items, batch_frames=1500, workers=2):
        assert np.array_equal(
            r.codes, encode_file(ckpt, r.item.path, tmp_path / "x.tokens.safetensors")
        )


def test_a_bad_file_in_a_batch_fails_alone(tmp_path, trained):
    files = many_files(tmp_path / "in", 6)
    np.save(files / "spk0" / "utt0002.npy", np.zeros((4, 3), np.float32))
    ckpt = load(trained)
    results = list(
        encode_items(ckpt, expand_inputs([files], SUFFIXES, "feature"), batch_frames=10_000)
    )
    bad = [r for r in results if r.error]
    assert len(bad) == 1 and "utt0002.npy: features have dim 3" in bad[0].error
    assert all(r.codes is not None for r in results if not r.error)


# ---------------------------------------------------------------- ranks


def test_every_input_goes_to_exactly_one_rank(tmp_path):
    files = many_files(tmp_path, 23)
    items = expand_inputs([files], SUFFIXES, "feature")
    for world in range(1, 8):
        parts = [rank_items(items, r, world) for r in range(world)]
        flat = [it.path for part in parts for it in part]
        assert sorted(flat) == sorted(it.path for it in items) and len(flat) == len(set(flat))


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ((None, None), {}, (0, 1)),
        ((4, 2), {"RANK": "1", "WORLD_SIZE": "8"}, (2, 4)),
        ((None, None), {"RANK": "3", "WORLD_SIZE": "8"}, (3, 8)),
        ((None, None), {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "6",
                        "SLURM_ARRAY_TASK_MIN": "1"}, (4, 6)),
        ((None, None), {"SLURM_PROCID": "2", "SLURM_NTASKS": "3"}, (2, 3)),
    ],
)  # fmt: skip
def test_rank_comes_from_flags_then_torchrun_then_slurm(flags, env, expected):
    assert resolve_rank(*flags, environ=env) == expected


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [((3, 3), {}, "shard index 3 is not in [0, 3)"), ((3, None), {}, "go together"),
     ((None, None), {"RANK": "x", "WORLD_SIZE": "2"}, "not integers")],
)  # fmt: skip
def test_bad_rank_settings(flags, env, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace(")", r"\)")):
        resolve_rank(*flags, environ=env)


# ---------------------------------------------------------------- corpus format


def test_corpus_roundtrip_random_access_and_iteration(tmp_path, trained):
    files = many_files(tmp_path / "in", 17)
    res = run_cli(
        "encode",
        trained,
        files,
        "--out",
        tmp_path / "corpus",
        "--shards",
        "--shard-size",
        "5",
        "--json",
    )
    assert res.code == 0, res.err
    assert json.loads(res.out)["shards_written"] == 4
    run_cli("encode", trained, files, "--out", tmp_path / "tok")
    corpus = Corpus(tmp_path / "corpus")
    assert len(corpus) == 17 and len(corpus.shards) == 4
    keys = [f"spk{i % 3}/utt{i:04d}" for i in range(17)]
    assert sorted(corpus.keys()) == sorted(keys)
    for key in reversed(keys):  # random access, any order
        assert np.array_equal(
            corpus[key], read_tokens(tmp_path / "tok" / f"{key}.tokens.safetensors").codes
        )
    assert [k for k, _ in corpus] == corpus.keys()
    sources = {u.key: u.source for u in corpus.utterances()}
    assert sources["spk1/utt0004"] == str(files / "spk1" / "utt0004.npy")
    assert verify_corpus(tmp_path / "corpus") == []
    with pytest.raises(KeyError):
        corpus["nope"]


def test_decode_and_stats_accept_a_corpus(tmp_path, trained):
    files = many_files(tmp_path / "in", 7)
    run_cli("encode", trained, files, "--out", tmp_path / "corpus", "--shards", "--shard-size", "3")
    run_cli("encode", trained, files, "--out", tmp_path / "tok")
    assert run_cli("decode", trained, tmp_path / "corpus", "--out", tmp_path / "dc").code == 0
    assert run_cli("decode", trained, tmp_path / "tok", "--out", tmp_path / "dt").code == 0
    assert tree_bytes(tmp_path / "dc") == tree_bytes(tmp_path / "dt")
    a = json.loads(
        run_cli("stats", trained, tmp_path / "corpus", "--features", files, "--json").out
    )
    b = json.loads(run_cli("stats", trained, tmp_path / "tok", "--features", files, "--json").out)
    assert a["columns"] == b["columns"] and a["reconstruction"] == b["reconstruction"]


def test_verify_finds_every_kind_of_damage(tmp_path, trained):
    files = many_files(tmp_path / "in", 6)
    root = tmp_path / "corpus"
    run_cli("encode", trained, files, "--out", root, "--shards", "--shard-size", "2")
    assert run_cli("verify", root).code == 0
    shard = root / corpus_format.shard_name(0, 1)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    res = run_cli("verify", root, "--json")
    assert res.code == 1 and "checksum does not match" in json.loads(res.out)["problems"][0]
    # a code out of range, with a manifest that agrees on the checksum
    manifest = json.loads((root / "manifest.json").read_text())
    entry = manifest["shards"][1]
    codes = [np.full((n, 1), 300) for _, _, n in entry["entries"]]
    corpus_format.write_shard(shard, [(k, c) for (k, _, _), c in zip(entry["entries"], codes, strict=True)],
                              checkpoint_id=manifest["checkpoint_id"], cardinalities=[1 << 16])  # fmt: skip
    entry["sha256"] = corpus_format.sha256_of(shard)
    (root / "manifest.json").write_text(json.dumps(manifest))
    problems = json.loads(run_cli("verify", root, "--json").out)["problems"]
    assert any("code 300 >= 256" in p for p in problems)
    (root / corpus_format.shard_name(0, 2)).unlink()
    problems = json.loads(run_cli("verify", root, "--json").out)["problems"]
    assert any("shard-r00000-00002.safetensors: missing" in p for p in problems)


def test_manifest_keys_cannot_escape_the_output_folder(tmp_path, trained):
    files = many_files(tmp_path / "in", 2)
    root = tmp_path / "corpus"
    run_cli("encode", trained, files, "--out", root, "--shards")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shards"][0]["entries"][0][0] = "../../evil"
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="not a safe relative path"):
        Corpus(root)
    res = run_cli("decode", trained, root, "--out", tmp_path / "out")
    assert res.code == 2 and "not a safe relative path" in res.err
    assert not (tmp_path / "evil.npy").exists()
    for bad in ("/abs", "a/../b", "", "a//b", "c:\\x"):
        with pytest.raises(FormatError):
            corpus_format.check_key(bad)


# ---------------------------------------------------------------- ranks and merge


def test_ranks_then_merge_equal_one_process(tmp_path, trained):
    files = many_files(tmp_path / "in", 20)
    single = tmp_path / "single"
    run_cli("encode", trained, files, "--out", single, "--shards", "--shard-size", "4")
    multi = tmp_path / "multi"
    for rank in (2, 0):
        res = run_cli("encode", trained, files, "--out", multi, "--shards", "--shard-size", "4",
                      "--num-shards", "3", "--shard-index", str(rank))  # fmt: skip
        assert res.code == 0
    res = run_cli("merge", multi)
    assert res.code == 2 and "rank manifests missing for ranks [1]" in res.err
    env = {**os.environ, "RANK": "1", "WORLD_SIZE": "3"}
    subprocess.run([sys.executable, "-m", "tokquant", "encode", str(trained), str(files), "--out", str(multi),
                    "--shards", "--shard-size", "4", "-q"], env=env, check=True, capture_output=True)  # fmt: skip
    assert run_cli("merge", multi).code == 0
    a, b = Corpus(single), Corpus(multi)
    assert sorted(a.keys()) == sorted(b.keys()) and len(a) == 20
    for key in a.keys():
        assert np.array_equal(a[key], b[key])
    assert verify_corpus(multi) == []


# ---------------------------------------------------------------- resume after SIGKILL


def _encode_cmd(trained: Path, files: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tokquant", "encode", str(trained), str(files), "--out", str(out),
            "--shards", "--shard-size", "3", "--workers", "1", "--batch-frames", "64", "-q"]  # fmt: skip


def _listed_shards(part: Path) -> int:
    try:
        return len(json.loads(part.read_text())["shards"])
    except (OSError, ValueError):  # not there yet
        return 0


def test_sigkill_at_any_moment_then_resume_is_byte_identical(tmp_path, trained):
    files = many_files(tmp_path / "in", 120, frames=(3000, 5000))
    reference = tmp_path / "reference"
    subprocess.run(_encode_cmd(trained, files, reference), check=True, capture_output=True)
    expected = tree_bytes(reference)
    total_shards = len(json.loads((reference / "manifest.json").read_text())["shards"])
    killed_mid_run = 0
    # kill before any output, then after 1, 7 and 20 finished shards, then while a shard
    # is being written (a few ms after the manifest grows)
    for attempt, (after_shards, extra_sleep) in enumerate(
        [(0, 0.3), (1, 0), (7, 0), (20, 0), (4, 0.004)]
    ):
        out = tmp_path / f"run{attempt}"
        proc = subprocess.Popen(_encode_cmd(trained, files, out), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        part = out / corpus_format.part_name(0, 1)
        deadline = time.monotonic() + 120
        while after_shards and proc.poll() is None and time.monotonic() < deadline:
            if _listed_shards(part) >= after_shards:
                break
            time.sleep(0.002)
        time.sleep(extra_sleep)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        listed = _listed_shards(part)
        killed_mid_run += 0 < listed < total_shards
        if part.exists():
            for shard in json.loads(part.read_text())["shards"]:  # all the manifest names is whole
                assert corpus_format.sha256_of(out / shard["file"]) == shard["sha256"]
            assert not (out / "manifest.json").exists()
        if out.exists():
            visible = [p for p in out.iterdir() if not p.name.startswith(".")]
            assert all(p.suffix in (".json", ".safetensors") for p in visible)
        resumed = subprocess.run(_encode_cmd(trained, files, out), capture_output=True, text=True)
        assert resumed.returncode == 0, (attempt, resumed.stderr[-3000:])  # say why, if ever
        assert tree_bytes(out) == expected
    assert killed_mid_run >= 3  # the kills did land in the middle of runs


def test_rerun_of_a_finished_corpus_writes_nothing(tmp_path, trained):
    files = many_files(tmp_path / "in", 5)
    out = tmp_path / "c"
    run_cli("encode", trained, files, "--out", out, "--shards", "--shard-size", "2")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    res = run_cli("encode", trained, files, "--out", out, "--shards", "--shard-size", "2", "--json")
    assert json.loads(res.out)["shards_written"] == 0
    assert all(
        before[p.name] == p.stat().st_mtime_ns for p in out.iterdir() if p.suffix == ".safetensors"
    )
    res = run_cli("encode", trained, files, "--out", out, "--shards", "--shard-size", "3")
    assert res.code == 2 and "holds a run over other inputs, shard size or checkpoint" in res.err
    res = run_cli(
        "encode",
        trained,
        files,
        "--out",
        out,
        "--shards",
        "--shard-size",
        "3",
        "--overwrite",
        "--json",
    )
    assert res.code == 0 and json.loads(res.out)["shards_written"] == 2
    assert sorted(p.name for p in out.glob("shard-*")) == [
        corpus_format.shard_name(0, j) for j in range(2)
    ]
