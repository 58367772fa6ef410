"""Ctrl-C during encode or train: a clean stop, finished outputs kept, nothing partial, and
the next run picks up where it stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.conftest import write_config
from tests.test_corpus import many_files, tree_bytes
from tokquant.formats.tokens import read_tokens


def _start(args: list) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tokquant", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 120) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _no_partial_files(root: Path) -> None:
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]


def test_ctrl_c_during_encode_keeps_finished_files_and_resumes(tmp_path, trained):
    files = many_files(tmp_path / "in", 150, frames=(3000, 5000))
    out = tmp_path / "out"
    args = ["encode", trained, files, "--out", out, "--batch-frames", "64", "--workers", "1"]
    proc = _start(args)
    code, err = _interrupt_when(proc, lambda: len(list(out.rglob("*.safetensors"))) >= 10)
    assert code == 130, err
    assert "interrupted: finished outputs are kept" in err and "Traceback" not in err
    done = list(out.rglob("*.tokens.safetensors"))
    assert 10 <= len(done) < 150
    for path in done:
        read_tokens(path)  # every file there is whole
    _no_partial_files(out)
    res = subprocess.run([sys.executable, "-m", "tokquant", *map(str, args), "--json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    summary = json.loads(res.stdout)
    assert summary["files_skipped"] == len(done) and summary["files_encoded"] == 150 - len(done)


def test_ctrl_c_during_corpus_encode_then_resume_is_byte_identical(tmp_path, trained):
    files = many_files(tmp_path / "in", 120, frames=(3000, 5000))
    args = ["--shards", "--shard-size", "3", "--batch-frames", "64", "--workers", "1"]
    reference = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "tokquant", "encode", str(trained), str(files), "--out",
                    str(reference), *args], check=True, capture_output=True)  # fmt: skip
    out = tmp_path / "out"
    part = out / "manifest.rank00000-of-00001.json"

    def some_shards() -> bool:
        try:
            return len(json.loads(part.read_text())["shards"]) >= 5
        except (OSError, ValueError):
            return False

    code, err = _interrupt_when(
        _start(["encode", trained, files, "--out", out, *args]), some_shards
    )
    assert code == 130 and "Traceback" not in err
    assert not (out / "manifest.json").exists()
    _no_partial_files(out)
    subprocess.run([sys.executable, "-m", "tokquant", "encode", str(trained), str(files), "--out", str(out),
                    *args], check=True, capture_output=True)  # fmt: skip
    assert tree_bytes(out) == tree_bytes(reference)


def test_ctrl_c_during_train_writes_no_checkpoint(tmp_path, corpus):
    config = write_config(tmp_path / "c.yaml", train__steps=100000)
    out = tmp_path / "model.safetensors"
    proc = _start(["train", "-c", config, "-d", corpus, "-o", out])
    started = time.monotonic()
    code, err = _interrupt_when(proc, lambda: time.monotonic() - started > 4)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert not out.exists()
    _no_partial_files(tmp_path)
    assert np.load(corpus / "a.npy").shape == (120, 12)  # inputs untouched
