"""Hostile file names and corpus keys, and the contract every command keeps with them.

Shared by tests/test_hostile_names.py (a short run in CI) and scripts/fuzz_readers.py
(as long as you like). A name is built from pieces that broke tools before: Rich markup,
terminal escapes, control characters, bidi overrides, combining marks, undecodable bytes
(surrogate-escaped, as Python spells them), our own suffixes and reserved names, and runs
long enough to cross the 255-byte file-name limit.

The contract, for each name: one ``error:`` line per failure and nothing else on stderr
(under ``-q``), never a traceback; an input fails only when its output name cannot exist;
what was written decodes to the same frames as an ordinary name; no temp files; inputs
unchanged; nothing written outside the output folder. For corpus keys, ``verify`` and
``decode`` agree: a key verify accepts decodes, and a key it flags fails alone (or the
whole corpus is refused, exit 2, when the key is unsafe as a path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file

from tests.conftest import run_cli
from tokquant.errors import FormatError
from tokquant.formats._safetensors import write_safetensors
from tokquant.formats.corpus import check_key, name_problem
from tokquant.runners.decode import RECORD  # the folder's record of its settings

PIECES = [
    "[bold]", "[/x]", "[", "]", "[dim, frames]", "\\", "#ch0", "#ch1", "%s", "{}", "-", "--out",
    "..", ".", " ", "  ", "~", "$HOME", "*", "?", "'", '"', "\u202e", "e\u0301", "é", "𝄞",
    "\x1b[31m", "\n", "\t", "\r", "\x7f", "\udcff", "\udc80", ".tokens.safetensors", ".npy",
    "manifest.json", "shard-r00000-00000.safetensors", ".tq-host-1-1.tmp", "a", "b",
]  # fmt: skip
LONG = st.integers(1, 250).map(lambda n: "y" * n)
NAME_TEXT = st.lists(
    st.one_of(st.sampled_from(PIECES), LONG, st.text(min_size=1, max_size=3)),
    min_size=1,
    max_size=5,
).map("".join)
FILE_NAMES = NAME_TEXT.map(lambda s: s.replace("/", "_").replace("\0", "_")).filter(bool)
KEYS = st.one_of(
    NAME_TEXT,
    st.sampled_from(
        [
            "../a",
            "/abs",
            "a/../../b",
            "a//b",
            "a/",
            "./a",
            ".",
            "",
            "b",
            "x\0y",
            "sub/dir/a",
            "y" * 300,
            "a\\b",
        ]
    ),  # fmt: skip
    st.lists(NAME_TEXT, min_size=2, max_size=3).map("/".join),
)


def fits(name: str) -> bool:
    return len(os.fsencode(name)) <= 255


def key_refused(key: str) -> bool:
    try:
        check_key(key)
    except FormatError:
        return True
    return name_problem(key) is not None


def tree_digest(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file under ``root`` (outside ``skip``) and its sha256."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (skip and path.is_relative_to(skip)):
            out[os.fsencode(path.relative_to(root)).hex()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return out


def only_error_lines(res) -> list[str]:
    """The stderr of a ``-q`` run: nothing but one-line ``error:`` messages."""
    assert "Traceback" not in res.err, res.err
    lines = res.err.splitlines()
    assert all(line.startswith("error:") for line in lines), repr(res.err)
    return lines


def no_temp_files(root: Path) -> None:
    """(A key may name a folder ``x.tmp``; only files are temp files.)"""
    left = [p for p in root.rglob("*.tmp") if p.is_file()]
    assert not left, left


class NameCase:
    """One hostile feature-file name through encode -> decode / stats / info, and as a
    corpus key through encode --shards -> verify -> decode."""

    def __init__(self, work: Path, ckpt: Path, features: np.ndarray, reference: np.ndarray):
        self.work, self.ckpt = work, ckpt
        self.features, self.reference = features, reference

    def run(self, name: str) -> str:
        """Check the contract for ``name``; return what happened (for the counts)."""
        case = self.work / "case"
        shutil.rmtree(case, ignore_errors=True)
        inputs = case / "in"
        inputs.mkdir(parents=True)
        try:
            np.save(inputs / f"{name}.npy", self.features)
        except (OSError, ValueError):
            shutil.rmtree(case)
            return "name the filesystem refuses"
        np.save(inputs / "plain.npy", self.features)
        before = tree_digest(inputs)
        # ``..npy`` has no name left once ``.npy`` is stripped: it keeps its suffix.
        stem = name + ".npy" if name in (".", "..") else name
        token_name = f"{stem}.tokens.safetensors"
        res = run_cli(
            "encode", self.ckpt, *_given(inputs, f"{name}.npy"), "--out", case / "tok", "-q"
        )
        errors = only_error_lines(res)
        if fits(token_name):
            assert res.code == 0 and not errors, (name, res.err)
        else:
            assert res.code == 1 and len(errors) == 1, (name, res.err)
            assert "file-name limit" in errors[0], errors
        assert (case / "tok" / "plain.tokens.safetensors").is_file()
        outcome = "encoded" if fits(token_name) else "failed alone (name too long)"
        if fits(token_name):
            self._decode_back(case, stem)
        self._corpus(case, inputs, name, stem)
        assert tree_digest(inputs) == before, "an input changed"
        no_temp_files(case)
        return outcome

    def _decode_back(self, case: Path, stem: str) -> None:
        tokens = case / "tok"
        given = _given(tokens, f"{stem}.tokens.safetensors")
        res = run_cli("decode", self.ckpt, *given, "--out", case / "dec", "-q")
        assert res.code == 0 and not only_error_lines(res), (stem, res.err)
        np.testing.assert_array_equal(np.load(case / "dec" / f"{stem}.npy"), self.reference)
        res = run_cli("stats", self.ckpt, *given, "--json")
        assert res.code == 0 and "Traceback" not in res.err, res.err
        assert json.loads(res.out)["frames"] == 2 * len(self.features)
        res = run_cli("info", tokens / f"{stem}.tokens.safetensors", "--json")
        assert res.code == 0 and "Traceback" not in res.err, res.err

    def _corpus(self, case: Path, inputs: Path, name: str, stem: str) -> None:
        root = case / "corpus"
        given = _given(inputs, f"{name}.npy")
        res = run_cli("encode", self.ckpt, *given, "--out", root, "--shards", "-q")
        errors = only_error_lines(res)
        if res.code == 1:  # the key is refused before anything is written for it
            assert len(errors) == 1 and key_refused(stem), (stem, res.err)
        else:
            assert res.code == 0 and not errors, (stem, res.err)
        KeyCase(self.work, self.ckpt, self.reference).check(root, expect_key=stem)


def _given(folder: Path, name: str) -> list[Path]:
    """The folder, and the file itself when folder discovery skips it (hidden names)."""
    return [folder, folder / name] if name.startswith(".") else [folder]


class KeyCase:
    """A corpus whose first key is replaced by a hostile one (shard, manifest and checksum
    rewritten consistently, as a careless tool or an attacker could)."""

    def __init__(self, work: Path, ckpt: Path, reference: np.ndarray):
        self.work, self.ckpt, self.reference = work, ckpt, reference

    def rekey(self, base: Path, key: str) -> Path:
        root = self.work / "keycase"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root)
        manifest = json.loads((root / "manifest.json").read_text())
        shard = manifest["shards"][0]
        shard["entries"][0][0] = key
        path = root / shard["file"]
        with safe_open(str(path), "np") as fh:
            metadata = dict(fh.metadata())
        arrays = load_file(str(path))
        keys = json.loads(metadata["keys"])
        keys[0] = key
        metadata["keys"] = json.dumps(keys)
        write_safetensors(path, arrays, metadata)
        shard["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (root / "manifest.json").write_text(json.dumps(manifest))
        return root

    def run(self, base: Path, key: str) -> str:
        root = self.rekey(base, key)
        return self.check(root, expect_key=key)

    def check(self, root: Path, expect_key: str) -> str:
        """verify, decode and stats agree on the corpus at ``root``."""
        before = tree_digest(self.work, skip=root.parent / "dec-corpus")
        res = run_cli("verify", root, "--json")
        assert res.code in (0, 1, 2) and "Traceback" not in res.err, res.err
        verified = res.code == 0
        out = root.parent / "dec-corpus"
        shutil.rmtree(out, ignore_errors=True)
        dec = run_cli("decode", self.ckpt, root, "--out", out, "-q")
        errors = only_error_lines(dec)
        stats = run_cli("stats", self.ckpt, root, "--json", "-q")
        only_error_lines(stats)
        assert tree_digest(self.work, skip=out) == before, "something outside --out changed"
        no_temp_files(self.work)
        if verified:
            assert dec.code == 0 and stats.code == 0, (expect_key, dec.err, stats.err)
            keys = json.loads((root / "manifest.json").read_text())["shards"][0]["entries"]
            first = keys[0][0]
            np.testing.assert_array_equal(np.load(out / f"{first}.npy"), self.reference)
            return "verified and decoded"
        assert dec.code in (1, 2) and len(errors) >= 1, (expect_key, dec.err)
        assert stats.code != 0, (expect_key, stats.err)
        if dec.code == 1:  # the bad key failed alone
            assert len(errors) == 1, dec.err
            written = [p.name for p in out.rglob("*") if p.is_file() and p.name != RECORD]
            assert written == ["plain.npy"] or written == ["b.npy"], written
            return "flagged, failed alone"
        assert not out.exists() or not any(out.rglob("*.npy")), "refused corpus wrote files"
        return "flagged, corpus refused"
