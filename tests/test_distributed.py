"""Two gloo processes with batch B/2 each train exactly like one process with batch B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tokquant import distributed
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.training import train_tokenizer

CONFIGS = {
    "bsq-factorized": {"quantizer": {"family": "bsq", "code_dim": 12, "entropy": "factorized",
                                     "group_size": 6, "entropy_loss_weight": 0.5}},
    "lfq-exact": {"quantizer": {"family": "lfq", "code_dim": 6, "entropy": "exact",
                                "entropy_loss_weight": 0.5}},
    "rvq": {"quantizer": {"family": "rvq", "num_levels": 2, "num_embeddings": 16},
            "projection": {"kind": "none"}},
    "rvq-ema-dead-codes": {"quantizer": {"family": "rvq", "num_levels": 2, "num_embeddings": 32,
                                         "ema_decay": 0.8, "dead_code_threshold": 0.5,
                                         "dead_code_window": 2},
                           "projection": {"kind": "none"}},
    "rvq-interpolated": {"quantizer": {"family": "rvq", "num_levels": 2, "num_embeddings": 16,
                                       "ema_decay": 0.8},
                         "projection": {"kind": "none"}, "train": {"interpolate": 0.5}},
}  # fmt: skip
TRAIN = {"steps": 6, "batch_frames": 256, "lr": 1e-2, "seed": 3, "eval_every": 3, "kmeans_iters": 3}


LENGTHS = [1200, 1800]  # two inputs, for train.interpolate


def _config(name: str) -> TokenizerConfig:
    return TokenizerConfig.from_dict(
        {**CONFIGS[name], "train": TRAIN | CONFIGS[name].get("train", {})}
    )


def _frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((3000, 10)) * np.linspace(0.5, 3, 10)).astype(np.float32)


def _worker(rank: int, world: int, store: str, name: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        result = train_tokenizer(_config(name), _frames(), lengths=LENGTHS)
        if rank == 0:
            torch.save({"state": result.tokenizer.state_dict(), "history": result.summary["history"],
                        "loss": result.summary["final_loss"]}, out)  # fmt: skip
    except BaseException:
        dist.destroy_process_group()
        raise
    distributed.leave()
    distributed.exit_now(0)  # as the CLI does: gloo's teardown can abort a finished rank


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_match_one_process(tmp_path, name):
    single = train_tokenizer(_config(name), _frames(), lengths=LENGTHS)
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), name, str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=True)
    assert two["loss"] == pytest.approx(single.summary["final_loss"], rel=1e-4, abs=1e-5)
    for a, b in zip(single.summary["history"], two["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
    for key, value in single.tokenizer.state_dict().items():
        assert torch.allclose(value, two["state"][key], rtol=1e-4, atol=1e-5), key


def test_entropy_terms_need_the_global_batch_mean():
    """Without the all-reduce the codebook entropy of two halves differs from the whole:
    the test above would fail if the reduction were missing."""
    from tokquant.quantizers import functional as Fq

    u = torch.randn(256, 8, dtype=torch.float64) * 3
    u[:128, 0] += 5  # the halves use different codes
    whole = Fq.grouped_codebook_entropy(u, 4)
    halves = (Fq.grouped_codebook_entropy(u[:128], 4) + Fq.grouped_codebook_entropy(u[128:], 4)) / 2
    assert abs(float(whole - halves)) > 1e-3
    summed = [None]

    def fake_reduce(t: torch.Tensor) -> torch.Tensor:  # a 2-rank sum where both ranks hold u
        return t * 2

    assert torch.allclose(Fq.grouped_codebook_entropy(u, 4, reduce=fake_reduce), whole)
    del summed


def test_torchrun_cli_writes_one_checkpoint(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this python")
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "a.npy", _frames())
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({**CONFIGS["bsq-factorized"], "train": TRAIN}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", "29517",
           "-m", "tokquant", "train", "-c", str(config), "-d", str(feats), "-o", str(tmp_path / "ddp.safetensors"),
           "--json"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    single = subprocess.run(
        [sys.executable, "-m", "tokquant", "train", "-c", str(config), "-d", str(feats), "-o",
         str(tmp_path / "one.safetensors"), "--json"], capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    one = json.loads(single.stdout)
    assert summary["final_loss"] == pytest.approx(one["final_loss"], rel=1e-4)
    assert summary["val_mse"] == pytest.approx(one["val_mse"], rel=1e-4)
