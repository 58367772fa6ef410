"""RVQ against brute force, the helia_edge formulas and vector-quantize-pytorch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tokquant import RVQ
from tokquant.quantizers.kmeans import kmeans
from tokquant.quantizers.search import nearest_code


def brute_force_encode(x: torch.Tensor, codebooks: list[torch.Tensor]) -> torch.Tensor:
    """Greedy residual search with explicit float64 distances."""
    residual = x.double().clone()
    cols = []
    for cb in codebooks:
        d = ((residual[:, None, :] - cb.double()[None]) ** 2).sum(-1)
        idx = d.argmin(-1)
        cols.append(idx)
        residual -= cb.double()[idx]
    return torch.stack(cols, -1)


def test_encode_matches_brute_force_float64():
    torch.manual_seed(0)
    q = RVQ(4, [64, 32, 16, 8], 12).double()
    x = torch.randn(500, 12, dtype=torch.float64)
    assert torch.equal(q.encode(x), brute_force_encode(x, list(q.codebooks)))


def test_chunked_search_equals_single_block_and_bounds_block_size():
    torch.manual_seed(1)
    x = torch.randn(1000, 8)
    cb = torch.randn(100, 8)
    one = nearest_code(x, cb, chunk_elements=1 << 30)
    assert torch.equal(nearest_code(x, cb, chunk_elements=700), one)  # 7 rows per block
    assert torch.equal(nearest_code(x, cb, chunk_elements=1), one)  # one row per block


def test_ties_break_to_lowest_index():
    cb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert nearest_code(x, cb).tolist() == [0, 1, 0]


def test_forward_values_losses_and_decode_equal_reference():
    torch.manual_seed(2)
    beta = 0.3
    q = RVQ(3, 16, 4, beta=beta).eval()
    x = torch.randn(5, 7, 4)
    out = q(x)
    codes = q.encode(x)
    assert torch.equal(out.indices, codes)
    assert torch.equal(q.decode(codes), out.quantized)
    # helia_edge losses, in float64 from the codes
    residual = x.reshape(-1, 4).double()
    expected = 0.0
    for level in range(3):
        ql = q.codebooks[level].double()[codes.reshape(-1, 3)[:, level]]
        mse = ((ql - residual) ** 2).mean()
        expected += beta * mse + mse
        residual = residual - ql
    assert out.aux_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_prefix_decode_and_encode_with_fewer_levels():
    torch.manual_seed(3)
    q = RVQ(4, [32, 16, 8, 4], 6)
    x = torch.randn(50, 6)
    codes = q.encode(x)
    for n in range(1, 5):
        assert torch.equal(q.encode(x, num_levels=n), codes[:, :n])
        expected = sum(q.codebooks[lv].detach()[codes[:, lv]] for lv in range(n))
        assert torch.allclose(q.decode(codes[:, :n]), expected, rtol=0, atol=0)


def test_gradients_straight_through_and_codebook_loss():
    torch.manual_seed(4)
    q = RVQ(2, 8, 3, beta=0.25)
    x = torch.randn(20, 3, requires_grad=True)
    w = torch.randn(20, 3)
    out = q(x)
    ((out.quantized * w).sum() + out.aux_loss).backward()
    codes = out.indices
    # d/dx: identity from the straight-through plus the commitment terms
    r1 = x.detach()
    q1 = q.codebooks[0].detach()[codes[:, 0]]
    r2 = r1 - q1
    q2 = q.codebooks[1].detach()[codes[:, 1]]
    n = x.numel()
    grad_x = w + 0.25 * 2 * (r1 - q1) / n + 0.25 * 2 * (r2 - q2) / n
    assert torch.allclose(x.grad, grad_x, atol=1e-6)
    # d/dC_l: the codebook loss pulls each used code towards its residuals
    for level, (r, ql) in enumerate([(r1, q1), (r2, q2)]):
        expected = torch.zeros_like(q.codebooks[level]).index_add_(
            0, codes[:, level], 2 * (ql - r) / n
        )
        assert torch.allclose(q.codebooks[level].grad, expected, atol=1e-6)


def test_metrics_equal_one_hot_formulas():
    torch.manual_seed(5)
    q = RVQ(2, [10, 5], 3)
    out = q(torch.randn(200, 3))
    for level, k in enumerate([10, 5]):
        one_hot = F.one_hot(out.indices[:, level], k).double()
        p = one_hot.mean(0)
        bits = -(p * torch.log(p + 1e-10) / math.log(2)).sum()
        m = out.metrics
        assert m[f"rvq_l{level + 1}_bits_per_index"].item() == pytest.approx(bits.item(), abs=1e-8)
        assert m[f"rvq_l{level + 1}_perplexity"].item() == pytest.approx(2 ** bits.item(), rel=1e-8)
        assert m[f"rvq_l{level + 1}_usage"].item() == pytest.approx((p > 0).sum().item() / k)
    assert m["rvq_bits_per_index_sum"] == pytest.approx(
        m["rvq_l1_bits_per_index"] + m["rvq_l2_bits_per_index"]
    )
    assert m["rvq_usage_mean"] == pytest.approx((m["rvq_l1_usage"] + m["rvq_l2_usage"]) / 2)
    assert m["rvq_perplexity_mean"] == pytest.approx(
        (m["rvq_l1_perplexity"] + m["rvq_l2_perplexity"]) / 2
    )


def test_identical_codes_to_vector_quantize_pytorch_residual_vq():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(6)
    dim, levels, k = 16, 4, 64
    peer = vqp.ResidualVQ(dim=dim, num_quantizers=levels, codebook_size=k).eval()
    ours = RVQ(levels, k, dim).eval()
    with torch.no_grad():
        for level, layer in enumerate(peer.layers):
            layer._codebook.embed.copy_(ours.codebooks[level].unsqueeze(0) * 0.5**level)
            layer._codebook.initted.fill_(True)
            ours.codebooks[level].mul_(0.5**level)
    x = torch.randn(8, 256, dim)
    _, peer_codes, _ = peer(x)
    assert torch.equal(ours.encode(x), peer_codes)


def test_encode_never_changes_codebooks():
    q = RVQ(2, 16, 4).train()
    before = [c.detach().clone() for c in q.codebooks]
    q.encode(torch.randn(100, 4))
    q(torch.randn(100, 4))  # forward alone does not update either
    assert all(torch.equal(a, b) for a, b in zip(before, q.codebooks, strict=True))


def test_autocast_codes_identical_to_fp32():
    torch.manual_seed(7)
    q = RVQ(3, 64, 16)
    x = torch.randn(256, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(x)
        codes = q.encode(x)
    assert torch.equal(codes, q.encode(x))
    assert torch.equal(out.indices, codes)
    assert out.quantized.dtype == torch.float32 and torch.isfinite(out.aux_loss)


def test_kmeans_recovers_separated_clusters_and_init_beats_random():
    g = torch.Generator().manual_seed(8)
    centers = torch.randn(8, 5, generator=g) * 10
    x = centers.repeat_interleave(200, 0) + 0.1 * torch.randn(1600, 5, generator=g)
    found = kmeans(x, 8, generator=torch.Generator().manual_seed(0))
    dist = torch.cdist(centers, found)
    assert (dist.min(1).values < 0.1).all()  # every true centre has a centroid on it

    q = RVQ(2, 32, 5)
    data = torch.randn(4000, 5, generator=g)
    mse_random = (q(data).quantized - data).pow(2).mean()
    q.init_from_data(data, generator=torch.Generator().manual_seed(0))
    out = q(data)
    assert (out.quantized - data).pow(2).mean() < 0.5 * mse_random
    assert out.metrics["rvq_l1_usage"] == 1.0


def test_kmeans_reseeds_empty_clusters():
    x = torch.cat([torch.zeros(50, 2), torch.ones(50, 2) * 5, torch.tensor([[100.0, 100.0]])])
    c = kmeans(x, 3, generator=torch.Generator().manual_seed(0))
    idx = nearest_code(x, c)
    assert torch.bincount(idx, minlength=3).min() >= 1


@pytest.mark.parametrize(
    ("make", "exc", "words"),
    [
        (lambda: RVQ(0, 8, 4), ValueError, "num_levels must be"),
        (lambda: RVQ(3, [8, 8], 4), ValueError, "one size per level (length 3)"),
        (lambda: RVQ(2, [8, 0], 4), ValueError, "num_embeddings must be"),
        (lambda: RVQ(2, 8, 0), ValueError, "embedding_dim must be"),
        (lambda: RVQ(2, 8, 4)(torch.randn(3, 5)), ValueError, "last dimension 4"),
        (lambda: RVQ(2, 8, 4)(torch.ones(3, 4, dtype=torch.int32)), TypeError, "floating-point"),
        (
            lambda: RVQ(2, 8, 4).encode(torch.randn(3, 4), num_levels=3),
            ValueError,
            "num_levels must be in [1, 2]",
        ),
        (
            lambda: RVQ(2, 8, 4).decode(torch.full((3, 2), 8)),
            ValueError,
            "level 1 must be in [0, 8)",
        ),
        (
            lambda: RVQ(2, 8, 4).decode(torch.zeros(3, 3, dtype=torch.int64)),
            ValueError,
            "codes must have shape",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(make, exc, words):
    with pytest.raises(exc) as info:
        make()
    assert words in str(info.value)


def test_kmeans_with_fewer_points_than_codes_keeps_every_point_and_stays_finite():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    c = kmeans(x, 4, generator=torch.Generator().manual_seed(0))
    assert c.shape == (4, 3) and torch.isfinite(c).all()
    assert torch.equal(c[0], x[0])
