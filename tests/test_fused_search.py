"""The fused Triton nearest-code kernel, against float64 brute force.

Without a GPU the kernel runs under Triton's interpreter (``TRITON_INTERPRET=1``, numpy
semantics of the same program), which checks its indexing, masking, tiling and
tie-breaking; the CUDA tests compile it for real and skip without a GPU.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

import tokquant.quantizers.rvq as rvq_module
from tests import interpreted_kernels
from tokquant import RVQ

if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)

has_cuda = torch.cuda.is_available()
Search = Callable[..., torch.Tensor]


@pytest.fixture(scope="module")
def interpreted() -> Iterator[Search]:
    """``fused_nearest_code`` run by Triton's interpreter in a worker process."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        1, mp_context=context, initializer=interpreted_kernels.start_worker
    ) as pool:

        def search(x: torch.Tensor, codebook: torch.Tensor, **kwargs: int) -> torch.Tensor:
            return pool.submit(interpreted_kernels.fused_nearest_code, x, codebook, kwargs).result()

        yield search


def brute_force(x: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 nearest codes and the gap to the runner-up (how safe each decision is)."""
    d = ((x.double()[:, None, :] - codebook.double()[None]) ** 2).sum(-1)
    if codebook.shape[0] == 1:
        return d.argmin(-1), torch.full((x.shape[0],), float("inf"), dtype=torch.float64)
    two = d.topk(2, dim=-1, largest=False).values
    return d.argmin(-1), two[:, 1] - two[:, 0]


SHAPES = [
    (1, 1, 1),
    (17, 5, 3),
    (63, 64, 16),
    (65, 65, 17),
    (129, 100, 20),
    (300, 1024, 128),
    (40, 200, 130),
]


@pytest.mark.parametrize("n,k,d", SHAPES)
def test_interpreted_kernel_matches_float64(interpreted: Search, n: int, k: int, d: int) -> None:
    g = torch.Generator().manual_seed(n * 1000 + k + d)
    x = torch.randn(n, d, generator=g)
    codebook = torch.randn(k, d, generator=g)
    got = interpreted(x, codebook)
    ref, gap = brute_force(x, codebook)
    safe = gap > 1e-3
    assert safe.float().mean() > 0.95
    assert torch.equal(got[safe], ref[safe])
    assert got.dtype == torch.int64 and got.shape == (n,)
    assert int(got.min()) >= 0 and int(got.max()) < k


@pytest.mark.parametrize("block_n,block_k", [(16, 16), (64, 64), (32, 128)])
def test_interpreted_kernel_equals_matmul_search(
    interpreted: Search, block_n: int, block_k: int
) -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(200, 48, generator=g)
    codebook = torch.randn(333, 48, generator=g)
    got = interpreted(x, codebook, block_n=block_n, block_k=block_k)
    ref, gap = brute_force(x, codebook)
    assert torch.equal(got[gap > 1e-3], rvq_module.nearest_code(x, codebook)[gap > 1e-3])
    assert torch.equal(got[gap > 1e-3], ref[gap > 1e-3])


def test_interpreted_ties_go_to_lowest_index_within_and_across_tiles(interpreted: Search) -> None:
    g = torch.Generator().manual_seed(3)
    codebook = torch.randn(256, 8, generator=g)
    codebook[10] = codebook[3]  # same tile as 3 (block_k=64)
    codebook[200] = codebook[3]  # a later tile
    codebook[150] = codebook[90]  # 90 and 150 both in later tiles than 3
    x = codebook[[3, 10, 200, 90, 150]].clone()
    got = interpreted(x, codebook, block_k=64)
    assert got.tolist() == [3, 3, 3, 90, 90]
    assert got.tolist() == rvq_module.nearest_code(x, codebook).tolist()


def test_interpreted_kernel_strided_and_empty_inputs(interpreted: Search) -> None:
    g = torch.Generator().manual_seed(5)
    wide = torch.randn(50, 64, generator=g)
    x = wide[:, ::2]  # non-contiguous rows
    codebook = torch.randn(40, 32, generator=g)
    ref, gap = brute_force(x, codebook)
    got = interpreted(x, codebook)
    assert torch.equal(got[gap > 1e-3], ref[gap > 1e-3])
    assert interpreted(x[:0], codebook).shape == (0,)


def test_fused_search_rejects_what_it_cannot_do(interpreted: Search) -> None:
    with pytest.raises(ValueError, match="float32"):
        interpreted(torch.zeros(3, 4, dtype=torch.float64), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[N, D\] and \[K, D\]"):
        interpreted(torch.zeros(3, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="search must be one of"):
        RVQ(2, 16, 4, search="faiss")
    with pytest.raises(ValueError, match="method must be one of"):
        rvq_module.nearest_code(torch.zeros(3, 4), torch.zeros(2, 4), method="faiss")


def test_fused_search_off_cuda_is_the_matmul_search() -> None:
    """On CPU (or float64) "fused" means the matmul search, so CPU users lose nothing."""
    torch.manual_seed(0)
    fused, matmul = RVQ(4, 64, 16, search="fused"), RVQ(4, 64, 16)
    matmul.load_state_dict(fused.state_dict())
    x = torch.randn(500, 16)
    assert torch.equal(fused.encode(x), matmul.encode(x))
    assert torch.equal(fused.encode(x.double()), matmul.encode(x.double()))


@pytest.mark.skipif(not has_cuda, reason="needs a CUDA GPU")
@pytest.mark.parametrize("n,k,d", [(1, 1, 1), (65, 65, 17), (4099, 1024, 128), (1000, 4096, 256)])
def test_compiled_kernel_on_cuda_matches_float64(n: int, k: int, d: int) -> None:
    from tokquant.quantizers.fused_search import fused_nearest_code

    g = torch.Generator().manual_seed(n + k + d)
    x, codebook = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
    ref, gap = brute_force(x, codebook)
    got = fused_nearest_code(x.cuda(), codebook.cuda()).cpu()
    assert torch.equal(got[gap > 1e-3], ref[gap > 1e-3])
    assert (got == ref).float().mean() >= 0.9999


@pytest.mark.skipif(not has_cuda, reason="needs a CUDA GPU")
def test_fused_rvq_on_cuda_gives_the_matmul_codes() -> None:
    torch.manual_seed(0)
    matmul = RVQ(8, 1024, 128).cuda().eval()
    fused = RVQ(8, 1024, 128, search="fused").cuda().eval()
    fused.load_state_dict(matmul.state_dict())
    x = torch.randn(32768, 128, device="cuda")
    a, b = matmul.encode(x), fused.encode(x)
    assert (a == b).float().mean() >= 0.9999
    codebook = matmul.codebooks[0].detach()
    dup = codebook.clone()
    dup[700] = dup[5]
    ties = rvq_module.nearest_code(dup[[5, 700]], dup, method="fused")
    assert ties.tolist() == [5, 5]
