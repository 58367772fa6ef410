"""Inputs are Sources and every job goes through the Tokenizer (issue 24): a new kind of
input plugs in without touching a job, and a job builds its front end once, from the
tokenizer that owns it."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import tokquant
from tests.conftest import SAMPLES, train_logmel
from tokquant.audio import frontend as frontend_module
from tokquant.audio.waveform import WaveformReader
from tokquant.engines.outputs import EncodeOptions, to_corpus, to_files
from tokquant.formats.corpus import Corpus
from tokquant.sources import Source, sources_for


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return train_logmel(tmp_path_factory.mktemp("sources"), "family: bsq, code_dim: 10")


@dataclass(frozen=True)
class BytesSource(Source):
    """Encoded audio held in memory (as a Parquet row or a tar member holds it)."""

    blob: bytes = field(kw_only=True)
    name: str = field(kw_only=True)

    @property
    def origin(self) -> str:
        return self.name

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        import io

        samples, rate = sf.read(io.BytesIO(self.blob), dtype="float32", always_2d=True)
        yield WaveformReader(samples, rate, self.name)


def test_a_new_kind_of_source_plugs_in_without_touching_a_job(tmp_path, ckpt):
    tok = tokquant.load(ckpt)
    files = sources_for(tok.config, [SAMPLES / "gb_f"])
    in_memory = [BytesSource(key=s.key.with_suffix(""), blob=s.path.read_bytes(), name=f"m:{s.key}")
                 for s in files]  # fmt: skip
    options = EncodeOptions()
    for name, sources in (("files", files), ("memory", in_memory)):
        report = to_corpus(tok, sources, tmp_path / name, options, rank=0, world=1, shard_size=4)
        assert report.done == len(files) and not report.failures
    a, b = Corpus(tmp_path / "files"), Corpus(tmp_path / "memory")
    assert sorted(a.keys()) == sorted(b.keys()) and len(a.keys()) == len(files)
    for key in a.keys():
        assert np.array_equal(a[key], b[key])
    assert {u.source for u in b.utterances()} == {s.origin for s in in_memory}


def test_a_job_builds_the_front_end_once_from_the_tokenizer(tmp_path, ckpt, monkeypatch):
    built = []
    real = frontend_module.build_frontend

    def counting(config, device="cpu"):
        built.append(device)
        return real(config, device)

    monkeypatch.setattr(frontend_module, "build_frontend", counting)
    tok = tokquant.load(ckpt)
    sources = sources_for(tok.config, [SAMPLES])
    assert len(sources) > 10
    report = to_files(tok, sources, tmp_path / "a", EncodeOptions(workers=3))
    assert report.done == len(sources) and len(built) == 1
    to_files(tok, sources, tmp_path / "b", EncodeOptions(workers=1))
    assert len(built) == 1  # the tokenizer owns it: a second job reuses it
    assert tok.frontend() is tok.frontend()


def test_copies_leave_the_front_end_behind_and_give_the_same_codes(ckpt):
    tok = tokquant.load(ckpt)
    wave, rate = sf.read(SAMPLES / "gb_f" / "utt00.flac", dtype="float32")
    codes = tok.encode_audio(wave, rate)
    assert tok._frontend is not None
    for other in (copy.deepcopy(tok), pickle.loads(pickle.dumps(tok))):
        assert other._frontend is None and other.checkpoint_id == tok.checkpoint_id
        assert np.array_equal(other.encode_audio(wave, rate).numpy(), codes.numpy())
