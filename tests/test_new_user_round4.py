"""What a new user hit with the README alone (issue 29, 31-34 and its frictions): outputs of
an earlier run are never passed off as this run's, km lines follow the manifest whatever
the ranks, several splits share one export folder, and the one-line fixes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLES, run_cli, train_logmel
from tests.test_hostile_round3 import one_error
from tokquant.formats.corpus import Corpus
from tokquant.formats.tokens import read_tokens

FILES = sorted(SAMPLES.rglob("*.flac"))
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(logmel_rvq) -> Path:
    return logmel_rvq


@pytest.fixture(scope="module")
def other_ckpt(tmp_path_factory) -> Path:
    return train_logmel(tmp_path_factory.mktemp("users4b"),
                        "family: rvq, num_levels: 3, num_embeddings: 16",
                        train="steps: 5, batch_frames: 256, kmeans_iters: 2")  # fmt: skip


# 31. a folder of earlier token files is never taken for this run's ---------------------


def test_earlier_token_files_are_skipped_only_when_this_run_wrote_them(tmp_path, ckpt, other_ckpt):
    out = tmp_path / "tok"
    inputs = SAMPLES / "gb_f"
    assert run_cli("encode", ckpt, inputs, "--out", out).code == 0
    before = {p: p.read_bytes() for p in out.rglob("*.tokens.safetensors")}
    res = run_cli("encode", ckpt, inputs, "--out", out, "--json")
    assert res.code == 0 and json.loads(res.out)["files_skipped"] == 6
    for extra, words in (([], "another checkpoint"),):
        line = one_error(run_cli("encode", other_ckpt, inputs, "--out", out, *extra))
        assert words in line and "--overwrite" in line
    line = one_error(run_cli("encode", ckpt, inputs, "--out", out, "--levels", "2"))
    assert "other --levels" in line and "--overwrite" in line
    line = one_error(run_cli("encode", ckpt, inputs, "--out", out, "--beam", "3"))
    assert "another --beam" in line
    assert {p: p.read_bytes() for p in out.rglob("*.tokens.safetensors")} == before
    res = run_cli("encode", ckpt, inputs, "--out", out, "--levels", "2", "--overwrite")
    assert res.code == 0
    assert all(read_tokens(p).codes.shape[1] == 2 for p in before)


# 32. km lines follow the manifest, whatever the ranks -----------------------------------


def test_km_lines_follow_a_fairseq_manifest_after_two_ranks_and_merge(tmp_path, ckpt):
    (tmp_path / "train.tsv").write_text(
        f"{SAMPLES}\n" + "".join(f"{f.relative_to(SAMPLES)}\t{sum(1 for _ in [0])}\n"
                                 for f in FILES))  # fmt: skip
    out = tmp_path / "c"
    for rank in (0, 1):
        res = run_cli("encode", ckpt, tmp_path / "train.tsv", "--out", out, "--shards",
                      "--shard-size", "4", "--num-shards", "2", "--shard-index", rank)  # fmt: skip
        assert res.code == 0, res.err
    assert run_cli("merge", out).code == 0
    res = run_cli("export", out, "--to", "km", "--layout", "interleave", "--out", tmp_path / "km")
    assert res.code == 0, res.err
    keys = (tmp_path / "km" / "train.keys").read_text().splitlines()
    assert keys == [f.relative_to(SAMPLES).with_suffix("").as_posix() for f in FILES]
    corpus = Corpus(out)
    units = (tmp_path / "km" / "train.km").read_text().splitlines()
    for key, line in zip(keys, units, strict=True):
        codes = corpus[key]
        assert [int(u) for u in line.split()] == codes.reshape(-1).tolist()


# 34. several splits in one export folder ----------------------------------------------


def test_train_and_validation_export_into_one_folder(tmp_path, ckpt):
    pytest.importorskip("pyarrow")
    datasets = pytest.importorskip("datasets")
    for split, folder in (("train", "gb_f"), ("validation", "us_m")):
        res = run_cli("encode", ckpt, SAMPLES / folder, "--out", tmp_path / split, "--shards")
        assert res.code == 0, res.err
    out = tmp_path / "hf"
    for split in ("train", "validation"):
        res = run_cli("export", tmp_path / split, "--to", "parquet", "--split", split,
                      "--out", out)  # fmt: skip
        assert res.code == 0, res.err
    loaded = datasets.load_dataset(str(out))
    assert sorted(loaded) == ["train", "validation"]
    assert loaded["train"].num_rows == 6 and loaded["validation"].num_rows == 6
    train_files = sorted((out / "data").glob("train-*"))
    res = run_cli("export", tmp_path / "validation", "--to", "parquet", "--split", "validation",
                  "--out", out, "--offsets", "--overwrite")  # fmt: skip
    assert res.code == 0, res.err  # another layout with --overwrite: replaces every split
    assert not any((out / "data").glob("train-*")) and train_files
    res = run_cli("export", tmp_path / "train", "--to", "parquet", "--split", "train",
                  "--out", out)  # fmt: skip
    line = one_error(res)
    assert "validation" in line and "--overwrite would delete their files too" in line


# frictions, one line each -------------------------------------------------------------------


def test_duplicate_file_name_keys_point_at_the_key_column(tmp_path, ckpt):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    audio = [{"bytes": f.read_bytes(), "path": f.name} for f in FILES[:12]]  # utt00.. twice
    pq.write_table(pa.table({"audio": audio}), tmp_path / "d.parquet")
    res = run_cli("encode", ckpt, tmp_path / "d.parquet", "--out", tmp_path / "c", "--shards")
    assert res.code == 1 and "name a column of unique ids with --key-column" in res.err


def test_a_wav_scp_of_archive_offsets_says_so(tmp_path, ckpt):
    (tmp_path / "a.ark").write_bytes(b"x")
    (tmp_path / "wav.scp").write_text(f"u1 {tmp_path / 'a.ark'}:12\n")
    res = run_cli("encode", ckpt, tmp_path / "wav.scp", "--out", tmp_path / "c", "--shards")
    assert res.code == 1 and "inside a Kaldi archive" in res.err


def test_tar_folders_globs_and_stdin_lists_are_inputs(tmp_path, ckpt):
    import tarfile

    (tmp_path / "shards").mkdir()
    for i, part in enumerate((FILES[:2], FILES[2:4])):
        with tarfile.open(tmp_path / "shards" / f"s-{i}.tar", "w") as tar:
            for f in part:
                tar.add(f, arcname=f"{f.parent.name}-{f.stem}.flac")
    ref = tmp_path / "ref"
    assert run_cli("encode", ckpt, *FILES[:4], "--out", ref, "--shards").code == 0
    for name, spec in (
        ("folder", tmp_path / "shards"),
        ("glob", str(tmp_path / "shards" / "*.tar")),
    ):
        res = run_cli("encode", ckpt, spec, "--out", tmp_path / name, "--shards")
        assert res.code == 0, res.err
        got = Corpus(tmp_path / name)
        assert len(got) == 4
        for f in FILES[:4]:
            assert np.array_equal(got[f"{f.parent.name}-{f.stem}"], Corpus(ref)[f.stem])
    listing = "".join(f"{f}\n" for f in FILES[:3])
    done = subprocess.run([sys.executable, "-m", "tokquant", "encode", ckpt, "-", "--out",
                           tmp_path / "stdin", "-q"], input=listing, text=True,
                          capture_output=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "stdin").rglob("*.tokens.safetensors"))) == 3


def test_m4a_in_a_folder_fails_with_its_reason(tmp_path, ckpt):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.flac").write_bytes(FILES[0].read_bytes())
    (tmp_path / "in" / "b.m4a").write_bytes(b"\0\0\0\x20ftypM4A ")
    res = run_cli("encode", ckpt, tmp_path / "in", "--out", tmp_path / "o")
    assert res.code == 1 and "b.m4a: m4a audio cannot be read" in res.err
    assert (tmp_path / "o" / "a.tokens.safetensors").is_file()


def test_flags_show_no_bool_metavar_and_piped_tables_keep_whole_ids(tmp_path, ckpt):
    done = subprocess.run([sys.executable, "-m", "tokquant", "encode", "--help"],
                          capture_output=True, text=True, env={"COLUMNS": "120", "PATH": ""})  # fmt: skip
    assert "--shards" in done.stdout and "<bool>" not in done.stdout.split("--help")[0]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # as a shell
    done = subprocess.run([sys.executable, "-m", "tokquant", "info", ckpt],
                          capture_output=True, text=True, env=env)  # a pipe: 80 columns  # fmt: skip
    from tests.conftest import content_id

    assert content_id(ckpt) in done.stdout


def test_info_describes_a_corpus_folder(tmp_path, ckpt):
    assert run_cli("encode", ckpt, SAMPLES / "gb_f", "--out", tmp_path / "c", "--shards").code == 0
    res = run_cli("info", tmp_path / "c", "--json")
    data = json.loads(res.out)
    assert data["kind"] == "corpus" and data["utterances"] == 6 and data["shards"] == 1
    assert data["run"]["channels"] == "mix"
    res = run_cli("encode", ckpt, SAMPLES / "gb_f", "--out", tmp_path / "r", "--shards",
                  "--num-shards", "2", "--shard-index", "0")  # fmt: skip
    assert "tokquant merge" in one_error(run_cli("info", tmp_path / "r"))


def test_the_readme_names_only_paths_the_demo_writes():
    readme = (ROOT / "README.md").read_text()
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    configs = re.search(r"for name in ([\w -]+); do", demo).group(1).split()
    outputs = set(re.findall(r'"\$OUT/([\w.-]+)"', demo))  # corpus, parquet, compare
    written = {*configs, *(f"{c}.safetensors" for c in configs), *outputs}
    named = set(re.findall(r"runs/demo/([\w.-]+)", readme))
    assert named and named <= written, named - written
