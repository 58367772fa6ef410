"""The same input gives the same tokens: alone or batched, any thread count, every run,
CPU or CUDA (the CUDA test runs where a GPU exists and skips cleanly elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tokquant import BSQ, LFQ, RVQ
from tokquant.api import load
from tokquant.runners.batcher import encode_features


def _features(n: int = 3000, dim: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, dim)) * 2).astype(np.float32)


@pytest.fixture(params=["bsq", "rvq"])
def checkpoint(request, tmp_path, corpus, trained):
    if request.param == "bsq":
        return load(trained)
    from tests.conftest import write_config

    path = tmp_path / "rvq.safetensors"
    run_cli("train", "-c", write_config(tmp_path / "c.yaml", "rvq"), "-d", corpus, "-o", path)
    return load(path)


def test_codes_do_not_depend_on_thread_count(checkpoint):
    x = _features()
    previous = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            runs.append(encode_features(checkpoint, x)[0])
    finally:
        torch.set_num_threads(previous)
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_codes_do_not_depend_on_batch_neighbours_or_cuts(checkpoint):
    x = _features()
    whole = encode_features(checkpoint, x)[0]
    parts = encode_features(checkpoint, x[:1000], x[1000:1001], x[1001:])
    assert np.array_equal(np.concatenate(parts), whole)
    rng = np.random.default_rng(1)
    other = (rng.standard_normal((777, 12)) * 5).astype(np.float32)
    assert np.array_equal(encode_features(checkpoint, other, x, other)[1], whole)


def test_repeated_cli_runs_write_identical_bytes(tmp_path, trained, corpus):
    for name in ("one", "two"):
        assert run_cli("encode", trained, corpus, "--out", tmp_path / name).code == 0
    one = {
        p.relative_to(tmp_path / "one"): p.read_bytes()
        for p in (tmp_path / "one").rglob("*.safetensors")
    }
    two = {
        p.relative_to(tmp_path / "two"): p.read_bytes()
        for p in (tmp_path / "two").rglob("*.safetensors")
    }
    assert one == two and len(one) == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_codes_equal_cpu_codes():
    torch.manual_seed(0)
    x = torch.randn(20000, 16) * 3
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True  # a user's global setting must not matter
    try:
        for q in (BSQ(16), LFQ(16), RVQ(8, 1024, 16)):
            q.eval()
            cpu = q.encode(x)
            gpu = q.to("cuda").encode(x.to("cuda")).cpu()
            assert torch.equal(cpu, gpu), type(q).__name__
            assert torch.equal(q(x.to("cuda")).indices.cpu(), cpu)
        assert torch.backends.cuda.matmul.allow_tf32  # restored after encode
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def test_codes_of_a_fixed_checkpoint_equal_under_every_cpu_kernel(tmp_path, trained, corpus):
    """Encoding must not depend on the CPU model (issue 29): the same checkpoint under
    ATen's AVX2 kernels and its plain ``default`` ones (the SSE-class code a CPU without
    AVX2 runs) writes the same token files, for a feature BSQ and a log-mel RVQ."""
    import os
    import subprocess
    import sys

    from tests.conftest import SAMPLES, train_logmel

    audio = train_logmel(tmp_path, "family: rvq, num_levels: 4, num_embeddings: 64",
                         train="steps: 10, batch_frames: 512, kmeans_iters: 3")  # fmt: skip
    outputs = {}
    for capability in ("avx2", "default"):
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
        used = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu."
                               "get_cpu_capability())"], env=env, capture_output=True, text=True)  # fmt: skip
        assert used.stdout.strip() == capability.upper()  # the kernels really switched
        for name, ckpt, inputs in (("bsq", trained, corpus), ("rvq", audio, SAMPLES / "gb_f")):
            out = tmp_path / f"{name}-{capability}"
            done = subprocess.run([sys.executable, "-m", "tokquant", "encode", ckpt, inputs,
                                   "--out", out, "--shards", "-q"],
                                  env=env, capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr
            outputs[name, capability] = {p.name: p.read_bytes() for p in out.glob("shard-*")}
    for name in ("bsq", "rvq"):
        assert outputs[name, "avx2"] and outputs[name, "avx2"] == outputs[name, "default"], name
