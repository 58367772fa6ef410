"""Fuzz the readers of token files, corpora and checkpoints: only clean errors.

Each reader gets thousands of mutated files (byte flips, truncations, and edits of the
JSON header and metadata that keep the file parseable so the checks behind them run). A
reader may accept the file or raise FormatError/InputError; any other exception, a hang
(hypothesis deadline) or a huge allocation (a memory cap) fails the test. A longer run:
``python scripts/fuzz_readers.py --examples 100000``.
"""

from __future__ import annotations

import json
import resource
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tokquant.errors import FormatError, InputError
from tokquant.formats.corpus import Corpus, verify_corpus
from tokquant.formats.tokens import read_tokens
from tokquant.tokenizer.checkpoint import load_checkpoint

CLEAN = (FormatError, InputError)
EXAMPLES = 1500

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)  # fmt: skip


def split_header(blob: bytes) -> tuple[dict, bytes]:
    size = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8 : 8 + size]), blob[8 + size :]


def join_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


@st.composite
def mutations(draw, blob: bytes) -> bytes:
    """A mutated copy of a safetensors file."""
    kind = draw(st.sampled_from(["bytes", "truncate", "header", "metadata-json", "header-size"]))
    if kind == "bytes":
        data = bytearray(blob)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "truncate":
        return blob[: draw(st.integers(0, len(blob) - 1))]
    if kind == "header-size":
        return struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + blob[8:]
    header, body = split_header(blob)
    if kind == "header":
        key = draw(st.sampled_from(sorted(header)))
        if key != "__metadata__" and draw(st.booleans()):
            field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
            header[key][field] = draw(json_values | st.lists(st.integers(-5, 2**62), max_size=3))
        else:
            header[key] = draw(json_values)
        return join_header(header, body)
    meta = dict(header.get("__metadata__", {}))
    key = draw(st.sampled_from(sorted(meta)))
    value = meta[key]
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if parsed is not None and draw(st.booleans()):
        meta[key] = json.dumps(_mutate_json(draw, parsed))
    else:
        meta[key] = draw(st.text(max_size=30) | st.integers(-5, 10**12).map(str))
    header["__metadata__"] = meta
    return join_header(header, body)


def _mutate_json(draw, value):
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        value = dict(value)
        value[key] = _mutate_json(draw, value[key]) if draw(st.booleans()) else draw(json_values)
        return value
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        value = list(value)
        value[i] = _mutate_json(draw, value[i]) if draw(st.booleans()) else draw(json_values)
        return value
    return draw(json_values)


@pytest.fixture(scope="module")
def samples(tmp_path_factory, trained, corpus) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    run_cli("encode", trained, corpus / "a.npy", "--out", root / "tok")
    run_cli("encode", trained, corpus, "--out", root / "corpus", "--shards", "--shard-size", "2")
    return {
        "tokens": root / "tok" / "a.tokens.safetensors",
        "corpus": root / "corpus",
        "ckpt": trained,
    }


@pytest.fixture(autouse=True, scope="module")
def memory_cap():
    """A hostile header must not make a reader allocate gigabytes: cap the address space."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (12 * 2**30, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


FUZZ = settings(
    max_examples=EXAMPLES, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True
)


def check(reader, path: Path) -> None:
    try:
        reader(path)
    except CLEAN:
        pass


def test_token_file_reader(samples, tmp_path_factory):
    blob = samples["tokens"].read_bytes()
    target = tmp_path_factory.mktemp("tokfuzz") / "x.tokens.safetensors"

    @FUZZ
    @given(mutations(blob))
    def run(data: bytes) -> None:
        target.write_bytes(data)
        check(read_tokens, target)

    run()


def test_checkpoint_reader(samples, tmp_path_factory):
    blob = samples["ckpt"].read_bytes()
    target = tmp_path_factory.mktemp("ckptfuzz") / "x.safetensors"

    @FUZZ
    @given(mutations(blob))
    def run(data: bytes) -> None:
        target.write_bytes(data)
        check(load_checkpoint, target)

    run()


def test_corpus_reader_and_verifier(samples, tmp_path_factory):
    src = samples["corpus"]
    shard_blob = (src / "shard-r00000-00000.safetensors").read_bytes()
    manifest = json.loads((src / "manifest.json").read_text())
    work = tmp_path_factory.mktemp("corpusfuzz")
    for p in src.iterdir():
        (work / p.name).write_bytes(p.read_bytes())

    def read_all(root: Path) -> None:
        corpus = Corpus(root)
        for _ in corpus:
            pass
        verify_corpus(root)

    @FUZZ
    @given(st.booleans(), mutations(shard_blob), st.data())
    def run(mutate_manifest: bool, shard: bytes, data) -> None:
        (work / "shard-r00000-00000.safetensors").write_bytes(shard_blob)
        (work / "manifest.json").write_text(json.dumps(manifest))
        if mutate_manifest:
            (work / "manifest.json").write_text(json.dumps(_mutate_json(data.draw, manifest)))
        else:
            (work / "shard-r00000-00000.safetensors").write_bytes(shard)
        check(read_all, work)

    run()


def test_garbage_manifest_text(tmp_path):
    for text in ["", "{", "[]", "null", '{"format": "tokquant-corpus"}', "\x00\xff"]:
        (tmp_path / "manifest.json").write_bytes(text.encode("latin-1"))
        with pytest.raises(CLEAN):
            Corpus(tmp_path)


def test_truncated_token_files_of_every_length(samples, tmp_path):
    blob = samples["tokens"].read_bytes()
    target = tmp_path / "t.tokens.safetensors"
    for n in range(len(blob)):
        target.write_bytes(blob[:n])
        with pytest.raises(CLEAN):
            read_tokens(target)
    target.write_bytes(blob)
    assert read_tokens(target).codes.dtype == np.int64
