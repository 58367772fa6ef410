"""tokquant export: every format x layout x offsets x dedup read back by the readers LM
trainers use (datasets, webdataset, plain text) equals the corpus; metadata join; resume
after SIGKILL with the same bytes; refusals; the TokenDataset under a 2-worker DataLoader."""

from __future__ import annotations

import glob
import itertools
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.corpora import random_utterances, write_corpus
from tokquant.data import TokenDataset, unflatten
from tokquant.formats import corpus as corpus_format
from tokquant.formats.webdataset import corpus_key, tar_key

# the readers below must never reach for the network (CI has none beyond package registries)
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CARDS = (1024, 1024, 7)  # RVQ-like columns and a narrow one


@pytest.fixture(scope="module")
def utterances() -> dict[str, np.ndarray]:
    return random_utterances(23, CARDS, seed=0, empty_every=10)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, utterances) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "c", utterances, CARDS, shard_size=5)


def export(corpus: Path, out: Path, *args: str | Path, code: int = 0) -> dict:
    res = run_cli("export", corpus, "--out", out, "--workers", "1", "--json", *args)
    assert res.code == code, res.err
    return json.loads(res.out) if code == 0 else {"err": res.err}


def read_parquet(out: Path) -> dict[str, dict]:
    import datasets

    data = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(out.parent / "hf"))
    rows = data["train"].with_format("numpy")
    return {row["key"]: row for row in rows}


def read_webdataset(out: Path) -> dict[str, dict]:
    import webdataset as wds

    samples = wds.WebDataset(sorted(glob.glob(str(out / "*.tar"))), shardshuffle=False).decode()
    rows = {}
    for sample in samples:
        meta = sample["json"]
        assert corpus_key(sample["__key__"]) == meta["key"]
        rows[meta["key"]] = {"codes": sample["codes.npy"], "durations": sample.get("durations.npy"),
                             **meta}  # fmt: skip
    return rows


def read_km(out: Path, split: str = "train") -> dict[str, dict]:
    keys = (out / f"{split}.keys").read_text().split("\n")[:-1]
    units = (out / f"{split}.km").read_text().split("\n")[:-1]
    dur_file = out / f"{split}.durations"
    durations = dur_file.read_text().split("\n")[:-1] if dur_file.exists() else [None] * len(keys)
    assert len(keys) == len(units) == len(durations)
    return {k: {"codes": np.array(u.split(), np.int64),
                "durations": None if d is None else np.array(d.split(), np.int64)}
            for k, u, d in zip(keys, units, durations, strict=True)}  # fmt: skip


READERS = {"parquet": read_parquet, "webdataset": read_webdataset, "km": read_km}


@pytest.mark.parametrize(
    "to,layout,offsets,dedup",
    [c for c in itertools.product(["parquet", "webdataset", "km"],
                                  ["parallel", "interleave", "delay"], [False, True],
                                  [False, True]) if not (c[0] == "km" and c[1] == "parallel")],
)  # fmt: skip
def test_every_combination_reads_back_as_the_corpus(
    tmp_path, corpus_dir, utterances, to, layout, offsets, dedup
):
    out = tmp_path / "out"
    flags = ["--to", to, "--layout", layout, *(["--offsets"] if offsets else []),
             *(["--dedup"] if dedup else [])]  # fmt: skip
    summary = export(corpus_dir, out, *flags)
    vocab = (sum(CARDS) if offsets else max(CARDS)) + (layout == "delay")
    assert summary["vocab_size"] == vocab
    assert summary["utterances"] == len(utterances)
    rows = READERS[to](out)
    assert list(rows) == sorted(utterances)  # corpus (key) order, nothing lost
    for key, codes in utterances.items():
        row = rows[key]
        tokens = np.asarray(row["codes"])
        if to == "km" and layout == "delay":
            tokens = tokens.reshape(-1, len(CARDS))
        durations = np.asarray(row["durations"]) if dedup else None
        back = unflatten(tokens, CARDS, layout=layout, offsets=offsets, durations=durations)
        assert np.array_equal(back, codes), key
        if to != "km":
            assert row["num_frames"] == codes.shape[0]
        assert tokens.size == 0 or tokens.max() < vocab


def test_parquet_schema_and_card(tmp_path, corpus_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    export(corpus_dir, out, "--to", "parquet", "--layout", "delay", "--offsets")
    files = sorted((out / "data").glob("*.parquet"))
    assert [f.name for f in files] == [f"train-{i:05d}-of-00005.parquet" for i in range(5)]
    schema = pq.read_schema(files[0])
    codes_type = schema.field("codes").type  # an extension type once datasets is imported
    codes_type = getattr(codes_type, "storage_type", codes_type)
    assert codes_type.value_type.value_type == pa.uint16()  # list<list<uint16>>
    assert pa.types.is_list(codes_type) and pa.types.is_list(codes_type.value_type)
    info = json.loads(schema.metadata[b"tokquant"])
    assert info["cardinalities"] == list(CARDS) and info["pad_id"] == 2055
    assert info["checkpoint_id"] == "test-checkpoint" and info["frame_rate"] == 50.0
    import datasets

    features = datasets.load_dataset("parquet", data_dir=str(out),
                                     cache_dir=str(tmp_path / "hf"))["train"].features  # fmt: skip
    assert features["codes"] == datasets.Array2D((None, 3), "uint16")
    card = (out / "README.md").read_text()
    for needle in ("test-checkpoint", "50.0 frames/s", "1024, 1024, 7", "2056 ids",
                   "id 2055 pads", "path: data/train-*.parquet", "unflatten("):  # fmt: skip
        assert needle in card


def test_interleaved_parquet_is_a_flat_list(tmp_path, corpus_dir, utterances):
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    export(corpus_dir, out, "--to", "parquet", "--layout", "interleave")
    table = pq.read_table(out / "data")
    assert str(table.schema.field("codes").type) == "list<element: uint16>"
    key = sorted(utterances)[0]
    row = table.to_pylist()[0]
    assert row["key"] == key and row["codes"] == utterances[key].reshape(-1).tolist()


def test_webdataset_keys_are_tar_safe_and_plain_tarfile_reads_them(tmp_path):
    keys = {"a.b/c.d.e": [[1]], "x%2Ey": [[2]], "plain": [[3]], "dots...": [[4]]}
    utts = {k: np.array(v, np.int64) for k, v in keys.items()}
    c = write_corpus(tmp_path / "c", utts, (8,))
    out = tmp_path / "out"
    export(c, out, "--to", "webdataset")
    with tarfile.open(out / "train-00000.tar") as tar:
        names = tar.getnames()
        samples = {n.rsplit("/", 1)[-1].split(".", 1)[0] for n in names}
        assert all("." not in s for s in samples)
        meta = {json.load(tar.extractfile(n))["key"] for n in names if n.endswith(".json")}
    assert meta == set(keys)
    assert {tar_key(k) for k in keys} == {n.rsplit(".", 2)[0] for n in names if "codes" in n}
    assert all(corpus_key(tar_key(k)) == k for k in keys)
    assert set(read_webdataset(out)) == set(keys)


def test_km_dictionary_lists_every_id_with_its_count(tmp_path, corpus_dir, utterances):
    out = tmp_path / "out"
    export(corpus_dir, out, "--to", "km", "--layout", "interleave", "--offsets")
    lines = (out / "dict.km.txt").read_text().split("\n")[:-1]
    assert [int(line.split()[0]) for line in lines] == list(range(sum(CARDS)))
    counts = np.zeros(sum(CARDS), np.int64)
    for codes in utterances.values():
        np.add.at(counts, (codes + np.array([0, 1024, 2048])).reshape(-1), 1)
    assert [int(line.split()[1]) for line in lines] == counts.tolist()
    assert not (out / "parts").exists()


# ------------------------------------------------------------------------ metadata


def test_metadata_join_jsonl_types_missing_and_unknown(tmp_path, corpus_dir, utterances):
    keys = sorted(utterances)
    lines = [{"key": keys[0], "text": "hello", "speaker": 3, "score": 1, "ok": True},
             {"key": keys[1], "text": "wörld", "speaker": 4, "score": 0.5, "tags": ["a"]},
             {"key": "nope/none", "text": "stray"}]  # fmt: skip
    meta = tmp_path / "meta.jsonl"
    meta.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "out"
    res = run_cli("export", corpus_dir, "--out", out, "--to", "parquet", "--metadata", meta,
                  "--workers", "1")  # fmt: skip
    assert res.code == 0, res.err
    assert f"joined 2 of {len(keys)}" in res.err
    assert f"{len(keys) - 2} utterance(s) have no metadata" in res.err
    assert "1 metadata key(s) are not in the corpus (first: 'nope/none')" in res.err
    rows = read_parquet(out)
    assert rows[keys[0]]["text"] == "hello" and rows[keys[1]]["text"] == "wörld"
    assert rows[keys[0]]["speaker"] == 3 and rows[keys[1]]["score"] == 0.5
    assert rows[keys[0]]["ok"] and rows[keys[1]]["ok"] is None
    assert json.loads(rows[keys[1]]["tags"]) == ["a"] and rows[keys[2]]["text"] is None
    out2 = tmp_path / "wds"
    export(corpus_dir, out2, "--to", "webdataset", "--metadata", meta)
    assert read_webdataset(out2)[keys[1]]["text"] == "wörld"


def test_metadata_tsv(tmp_path, corpus_dir, utterances):
    keys = sorted(utterances)
    meta = tmp_path / "meta.tsv"
    meta.write_text(
        "speaker\tkey\ttext\n" + "".join(f"s{i}\t{k}\tt {i}\n" for i, k in enumerate(keys))
    )
    out = tmp_path / "out"
    summary = export(corpus_dir, out, "--to", "parquet", "--metadata", meta)
    assert summary["metadata_joined"] == len(keys) and summary["metadata_missing"] == 0
    rows = read_parquet(out)
    assert [rows[k]["speaker"] for k in keys] == [f"s{i}" for i in range(len(keys))]


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("m.jsonl", '{"key": "a"}\n{"key": "a"}\n', "m.jsonl:2: key 'a' appears twice"),
        ("m.jsonl", '{"key": "a"}\nnot json\n', "m.jsonl:2: not valid JSON"),
        ("m.jsonl", '{"id": "a"}\n', 'm.jsonl:1: needs a JSON object with a string "key"'),
        ("m.jsonl", '{"key": "a", "codes": 1}\n', "column 'codes' is reserved"),
        ("m.tsv", "id\ttext\na\tb\n", "must name a 'key' column"),
        ("m.tsv", "key\ttext\na\tb\tc\n", "m.tsv:2: 3 fields, the header has 2"),
        ("m.csv", "key,text\n", "must be a .jsonl or .tsv"),
    ],
)
def test_bad_metadata_is_one_line_and_writes_nothing(tmp_path, corpus_dir, name, text, message):
    meta = tmp_path / name
    meta.write_text(text)
    out = tmp_path / "out"
    err = export(corpus_dir, out, "--to", "parquet", "--metadata", meta, code=2)["err"]
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists()


# ------------------------------------------------------------------------ refusals


def test_refusals_are_one_line_exit_2_and_write_nothing(tmp_path, corpus_dir):
    out = tmp_path / "out"
    cases = [
        ([tmp_path / "nothing", "--to", "parquet"], "not a corpus folder"),
        ([corpus_dir, "--to", "km"], "use --layout interleave or --layout delay"),
        ([corpus_dir, "--to", "parquet", "--split", "a/b"], "--split must be"),
        ([corpus_dir, "--to", "parquet", "--workers", "0"], "--workers must be at least 1"),
        ([corpus_dir, "--to", "tfrecord"], "Invalid value for '--to'"),
    ]
    for args, message in cases:
        res = run_cli("export", *args, "--out", out)
        assert res.code == 2 and message in res.err and res.err.count("\n") == 1, res.err
        assert not out.exists()


def test_unmerged_corpus_is_refused(tmp_path, corpus_dir):
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / corpus_format.part_name(0, 2)).write_text("{}")
    res = run_cli("export", parts, "--to", "parquet", "--out", tmp_path / "out")
    assert res.code == 2 and "unmerged corpus" in res.err and "tokquant merge" in res.err


def test_damaged_corpus_is_refused_before_anything_is_written(tmp_path, utterances):
    c = write_corpus(tmp_path / "c", utterances, CARDS)
    shard = c / corpus_format.shard_name(0, 3)
    data = bytearray(shard.read_bytes())
    data[-3] ^= 1
    shard.write_bytes(bytes(data))
    out = tmp_path / "out"
    res = run_cli("export", c, "--to", "parquet", "--out", out, "--workers", "1", "-q")
    assert res.code == 2 and res.err.count("\n") == 1
    assert "checksum does not match" in res.err and "tokquant verify" in res.err
    assert not out.exists()


def test_another_export_into_the_same_folder_needs_overwrite(tmp_path, corpus_dir):
    out = tmp_path / "out"
    export(corpus_dir, out, "--to", "webdataset")
    err = export(corpus_dir, out, "--to", "webdataset", "--dedup", code=2)["err"]
    assert "holds another export" in err
    export(corpus_dir, out, "--to", "webdataset", "--dedup", "--overwrite")
    assert all(read_webdataset(out)[k]["durations"] is not None for k in read_webdataset(out))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert "is not empty" in export(corpus_dir, tmp_path / "busy", "--to", "km", "--layout",
                                    "interleave", code=2)["err"]  # fmt: skip
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------ resume


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def _export_cmd(corpus: Path, out: Path, to: str, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "tokquant", "export", str(corpus), "--to", to, "--out", str(out),
            "--layout", "delay", "--offsets", "--dedup", "--workers", str(workers), "-q"]  # fmt: skip


@pytest.mark.parametrize("to", ["parquet", "km"])
def test_sigkill_then_resume_gives_the_same_bytes(tmp_path, to):
    utts = random_utterances(400, CARDS, seed=3, max_frames=400)
    c = write_corpus(tmp_path / "c", utts, CARDS, shard_size=10)
    reference = tmp_path / "reference"
    subprocess.run(_export_cmd(c, reference, to), check=True, capture_output=True)
    expected = tree_bytes(reference)
    folder = "data" if to == "parquet" else "parts"
    killed_mid_run = 0
    for attempt, after in enumerate([1, 15, 30]):
        out = tmp_path / f"run{attempt}"
        proc = subprocess.Popen(_export_cmd(c, out, to), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            done = list((out / folder).glob("*.*")) if (out / folder).exists() else []
            if len([p for p in done if not p.name.startswith(".")]) >= after:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_mid_run += not (out / "README.md").exists()
        subprocess.run(_export_cmd(c, out, to), check=True, capture_output=True)
        assert tree_bytes(out) == expected
        assert not [p for p in out.rglob(".tq-*")]  # no temp file left
    assert killed_mid_run >= 2


def test_rerun_writes_nothing_and_workers_give_the_same_bytes(tmp_path, corpus_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(_export_cmd(corpus_dir, one, "parquet", workers=1), check=True)
    subprocess.run(_export_cmd(corpus_dir, two, "parquet", workers=2), check=True)
    assert tree_bytes(one) == tree_bytes(two)
    before = {p: p.stat().st_mtime_ns for p in (one / "data").iterdir()}
    summary = export(
        corpus_dir, one, "--to", "parquet", "--layout", "delay", "--offsets", "--dedup"
    )
    assert summary["files_exported"] == 0 and summary["files_skipped"] == 5
    assert before == {p: p.stat().st_mtime_ns for p in (one / "data").iterdir()}


# ------------------------------------------------------------------------ from a real encode


def test_export_of_an_encoded_corpus(tmp_path, trained, corpus):
    """A corpus made by `encode --shards` from conftest's feature folder."""
    encoded = tmp_path / "encoded"
    res = run_cli("encode", trained, corpus, "--out", encoded, "--shards", "--shard-size", "2")
    assert res.code == 0, res.err
    out = tmp_path / "out"
    export(encoded, out, "--to", "parquet", "--offsets")
    opened = corpus_format.Corpus(encoded)
    rows = read_parquet(out)
    assert list(rows) == opened.keys()
    for key, codes in opened:
        back = unflatten(rows[key]["codes"], opened.cardinalities, offsets=True)
        assert np.array_equal(back, codes)


# ------------------------------------------------------------------------ TokenDataset


def test_dataset_items_equal_the_export(tmp_path, corpus_dir, utterances):
    out = tmp_path / "out"
    export(corpus_dir, out, "--to", "parquet", "--layout", "delay", "--offsets", "--dedup")
    rows = read_parquet(out)
    data = TokenDataset(corpus_dir, layout="delay", offsets=True, dedup=True)
    assert len(data) == len(utterances)
    for i in range(len(data)):
        item = data[i]
        assert np.array_equal(item["codes"].numpy(), rows[item["key"]]["codes"])
        assert np.array_equal(item["durations"].numpy(), rows[item["key"]]["durations"])
        assert item["num_frames"] == utterances[item["key"]].shape[0]


def test_dataset_max_frames_windows_cover_every_frame(corpus_dir, utterances):
    data = TokenDataset(corpus_dir, layout="interleave", max_frames=7)
    got: dict[str, list] = {}
    for i in range(len(data)):
        item = data[i]
        assert item["num_frames"] <= 7 and item["codes"].shape[0] == item["num_frames"] * 3
        got.setdefault(item["key"], []).append((item["start"], item["codes"].numpy()))
    for key, codes in utterances.items():
        windows = sorted(got[key], key=lambda w: w[0])
        joined = np.concatenate([w for _, w in windows]) if windows else np.zeros(0)
        assert np.array_equal(joined, codes.reshape(-1))
    with pytest.raises(ValueError, match="max_frames"):
        TokenDataset(corpus_dir, max_frames=0)


def test_dataloader_with_two_workers_pads_and_reports_lengths(corpus_dir, utterances):
    import torch

    data = TokenDataset(corpus_dir, layout="parallel", offsets=True, max_frames=16)
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2,
                                         collate_fn=data.collate)  # fmt: skip
    seen = 0
    for batch in loader:
        codes, lengths = batch["codes"], batch["lengths"]
        assert codes.dtype == torch.int64 and codes.shape[0] == len(batch["keys"])
        assert codes.shape[1] == max(int(lengths.max()), 0) and codes.shape[2] == 3
        for b, (key, start) in enumerate(zip(batch["keys"], batch["starts"], strict=True)):
            n = int(lengths[b])
            want = utterances[key][start : start + n] + np.array([0, 1024, 2048])
            assert np.array_equal(codes[b, :n].numpy(), want)
            assert (codes[b, n:] == data.pad_id).all()
            seen += 1
    assert seen == len(data)
    assert data.pad_id == sum(CARDS)


def test_corpus_read_gives_the_frames_a_slice_would(tmp_path):
    """``Corpus.read(key, start, stop)`` (a TokenDataset window) reads only those frames
    and equals ``corpus[key][start:stop]``, empty utterances and shard ends included."""
    utts = random_utterances(12, (16, 5), seed=1, empty_every=5)
    opened = corpus_format.Corpus(write_corpus(tmp_path / "c", utts, (16, 5), shard_size=4))
    assert any(c.shape[0] == 0 for c in utts.values())
    for key, codes in utts.items():
        for start, stop in [(0, None), (2, 5), (3, 3), (5, 2), (0, 1000), (7, None)]:
            got = opened.read(key, start, stop)
            assert got.shape == codes[start:stop].shape
            assert np.array_equal(got, codes[start:stop])
        assert np.array_equal(opened[key], codes)
