"""FSQ: codes identical to vector-quantize-pytorch's FSQ, the mixed-radix layout against
brute force, wide grids in several columns, precision-independent codes, and the CLI."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from tests.conftest import run_cli, write_config
from tokquant import FSQ
from tokquant.errors import ConfigError
from tokquant.quantizers.fsq import level_groups

LEVELS = [[8, 5, 5, 5], [8, 8, 8, 5, 5, 5], [3] * 8, [4] * 8, [7, 6], [16, 3], [1000, 999]]


@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 50.0])
def test_codes_identical_to_vector_quantize_pytorch(levels, scale):
    from vector_quantize_pytorch import FSQ as PeerFSQ

    torch.manual_seed(len(levels) + int(scale))
    x = torch.randn(3, 700, len(levels)) * scale
    ours, peer = FSQ(levels), PeerFSQ(levels)
    out = ours(x)
    peer_quantized, peer_indices = peer(x)
    assert torch.equal(out.indices[..., 0], peer_indices.long())
    assert torch.allclose(out.quantized, peer_quantized, atol=1e-6)
    assert torch.equal(ours.encode(x), out.indices)
    assert torch.equal(ours.decode(out.indices), out.quantized)  # value = decode(encode(x))
    # and back through the peer's own inverse
    assert torch.allclose(peer.indices_to_codes(peer_indices), ours.decode(out.indices), atol=1e-6)


def test_mixed_radix_layout_against_brute_force():
    """Every grid point of [3, 4, 5] decodes to its own level values and encodes back to
    the index written out by hand, the first dim least significant."""
    levels = [3, 4, 5]
    q = FSQ(levels)
    codes = torch.arange(60).reshape(-1, 1)
    points = q.decode(codes)
    for code, point in zip(codes[:, 0].tolist(), points, strict=True):
        i0, i1, i2 = code % 3, (code // 3) % 4, code // 12
        want = [(i0 - 1) / 1, (i1 - 2) / 2, (i2 - 2) / 2]
        assert point.tolist() == want
    # points sit on the grid's centres, so the bound maps them back to themselves only
    # through atanh; encode the pre-images instead
    half_l = (torch.tensor(levels) - 1) * 1.001 / 2
    offset = torch.tensor([0.0, 0.5, 0.0])
    pre = torch.atanh((points * torch.tensor([1.0, 2.0, 2.0]) + offset) / half_l) - torch.atanh(
        offset / half_l
    )
    assert torch.equal(q.encode(pre), codes)


def test_wide_grids_split_into_columns_and_round_trip():
    levels = [1000, 1000, 1000, 7, 3]  # 1e9 * 7 * 3 codes: two columns
    assert level_groups(levels) == [(0, 3), (3, 5)]
    q = FSQ(levels)
    assert q.column_cardinalities == [10**9, 21]
    x = torch.randn(5000, 5) * 3
    codes = q.encode(x)
    assert codes.shape == (5000, 2) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes[:, 0].max()) < 10**9 and int(codes[:, 1].max()) < 21
    assert torch.equal(q.decode(codes), q(x).quantized)
    # each column is the one-column code of its dims
    assert torch.equal(codes[:, 0], FSQ([1000, 1000, 1000]).encode(x[:, :3])[:, 0])
    assert torch.equal(codes[:, 1], FSQ([7, 3]).encode(x[:, 3:])[:, 0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_codes_identical_under_autocast(dtype):
    torch.manual_seed(0)
    x = torch.randn(4096, 6) * 2
    q = FSQ([8, 8, 8, 5, 5, 5])
    want = q.encode(x)
    with torch.autocast("cpu", dtype=dtype):
        assert torch.equal(q.encode(x), want)
        assert torch.equal(q(x).indices, want)
    # what running the bound in half precision does (the peer's reported usage loss)
    rounded_half = FSQ._bounded(q, x.to(dtype)).round()
    assert len(torch.unique(q._columns(q._level_indices(rounded_half.float())))) < len(
        torch.unique(want)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_codes_equal_cpu():
    torch.manual_seed(0)
    x = torch.randn(100_000, 6) * 2
    q = FSQ([8, 8, 8, 5, 5, 5])
    assert torch.equal(q.cuda().encode(x.cuda()).cpu(), q.cpu().encode(x))


def test_gradient_is_that_of_the_bound():
    x = (torch.randn(64, 4, dtype=torch.float64) * 2).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    q = FSQ([8, 5, 5, 5])
    w = torch.randn(64, 4, dtype=torch.float64)
    (q(x).quantized * w).sum().backward()
    half = torch.tensor([4.0, 2.0, 2.0, 2.0], dtype=torch.float64)
    ((q._bounded(x2) / half) * w).sum().backward()
    assert torch.allclose(x.grad, x2.grad, rtol=1e-12, atol=1e-14)
    assert q(x).aux_loss.item() == 0.0


def test_usage_metrics_against_hand_counts():
    q = FSQ([3, 3])
    # pre-images of grid points: -3 -> level 0, 0 -> 1, 3 -> 2
    x = torch.tensor([[-3.0, -3.0], [-3.0, -3.0], [0.0, 3.0], [3.0, 0.0]])
    out = q(x)
    assert out.indices[:, 0].tolist() == [0, 0, 7, 5]
    assert out.metrics["codebook_usage"].item() == pytest.approx(3 / 9)
    p = np.array([2, 1, 1]) / 4
    assert out.metrics["code_entropy_bits"].item() == pytest.approx(-(p * np.log2(p)).sum())


@pytest.mark.parametrize(
    "levels,message",
    [
        ([2, 5], "2 levels: use bsq"),
        ([], "list of integers"),
        ([8, 2.5], "list of integers"),
        ("8,5", "list of integers"),
    ],  # fmt: skip
)
def test_bad_levels(tmp_path, levels, message):
    with pytest.raises((ValueError, TypeError)):
        FSQ(levels)
    config = write_config(tmp_path / "c.yaml", "fsq", quantizer__levels=levels)
    res = run_cli("train", "--config", config, "--data", tmp_path, "--out", tmp_path / "x.st")
    assert res.code == 2 and "quantizer.levels" in res.err and res.err.count("\n") == 1, res.err
    assert isinstance(ConfigError("x"), ValueError)


def test_cli_train_encode_decode_stats(tmp_path, corpus):
    config = write_config(tmp_path / "fsq.yaml", "fsq")
    ckpt = tmp_path / "fsq.safetensors"
    res = run_cli("train", "--config", config, "--data", corpus, "--out", ckpt)
    assert res.code == 0, res.err
    assert run_cli("encode", ckpt, corpus, "--out", tmp_path / "tok").code == 0
    assert run_cli("decode", ckpt, tmp_path / "tok", "--out", tmp_path / "dec").code == 0
    res = run_cli("stats", ckpt, tmp_path / "tok", "--features", corpus, "--json")
    assert res.code == 0, res.err
    import json

    stats = json.loads(res.out)
    column = stats["columns"][0]
    assert column["cardinality"] == math.prod([5, 4, 3]) and column["name"] == "fsq"
    assert 0 <= column["dead"] < 60


def test_other_families_checkpoints_keep_their_keys():
    """Adding FSQ adds no key to the flat quantizer section of BSQ/LFQ/RVQ checkpoints
    (their bytes and ids stay as they were)."""
    from tokquant.quantizers.params import BSQParams, FSQParams
    from tokquant.tokenizer.config.schema import _quantizer_to_dict

    assert "levels" not in _quantizer_to_dict(BSQParams())
    assert _quantizer_to_dict(FSQParams([7, 5]))["levels"] == [7, 5]


def test_level_groups_closed_form():
    for levels in itertools.product([3, 999, 1000], repeat=5):
        groups = level_groups(list(levels))
        assert groups[0][0] == 0 and groups[-1][1] == 5
        assert all(math.prod(levels[a:b]) <= 2**32 for a, b in groups)
        # greedy: no two neighbouring groups could have been one
        for (a, _), (_, c) in itertools.pairwise(groups):
            assert math.prod(levels[a:c]) > 2**32
