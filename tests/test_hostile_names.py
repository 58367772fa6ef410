"""Hostile file names and corpus keys through encode, decode, stats, info and verify (a short
hypothesis run; scripts/fuzz_readers.py runs the long one). See tests/hostile_names.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.conftest import run_cli
from tests.hostile_names import FILE_NAMES, KEYS, KeyCase, NameCase

CASES = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))  # fmt: skip


@pytest.fixture(scope="module")
def setting(tmp_path_factory, trained, corpus):
    work = tmp_path_factory.mktemp("names")
    features = np.load(corpus / "a.npy")
    plain = work / "plain"
    plain.mkdir()
    np.save(plain / "a.npy", features)
    np.save(plain / "plain.npy", features)
    assert run_cli("encode", trained, plain, "--out", work / "tok").code == 0
    assert run_cli("decode", trained, work / "tok", "--out", work / "ref").code == 0
    assert run_cli("encode", trained, plain, "--out", work / "base", "--shards").code == 0
    reference = np.load(work / "ref" / "a.npy")
    return work, trained, features, reference


@CASES
@given(name=FILE_NAMES)
@example(name="[bold]loud\n" + "y" * 230)
@example(name="a[/x] \u202e\udcff")  # undecodable bytes: the source metadata stays UTF-8
@example(name="a\\b")  # no corpus key: fails alone in encode --shards
@example(name="..")  # nothing left once .npy is stripped
def test_hostile_file_names(setting, name):
    work, ckpt, features, reference = setting
    NameCase(work, ckpt, features, reference).run(name)


@CASES
@given(key=KEYS)
@example(key="../escape")
@example(key="plain")  # a duplicate key
@example(key="dir/" + "k" * 300)
def test_hostile_corpus_keys(setting, key):
    work, ckpt, _, reference = setting
    KeyCase(work, ckpt, reference).run(work / "base", key)
