"""Fused nearest-code search for CUDA: distances and argmin in one Triton kernel.

The matmul search (:func:`tokquant.quantizers.rvq.nearest_code`) writes every
``rows x K`` distance block to memory and reads it back for the argmin; at 8 levels x
1024 codes x 262,144 vectors that is 16 GiB of traffic for 0.55 TFLOP of work. Here each
program keeps a ``BLOCK_N x BLOCK_K`` tile of distances in registers, folds it into a
running minimum per row, and only the winning indices leave the chip.

Codes must not depend on where they were computed, so the dot products use
``input_precision="ieee"`` (true float32; TF32 would move near-ties). Ties go to the
lowest index, as in ``torch.argmin``: within a tile ``tl.min`` breaks ties to the left,
and across tiles a later tile must be strictly smaller to win.

This module imports Triton at load time; :mod:`tokquant.quantizers.rvq` loads it only
when a CUDA search asks for it. Under ``TRITON_INTERPRET=1`` the same kernel runs on CPU
tensors, which is how the test suite checks it on machines without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _nearest_code_kernel(
    x_ptr,
    codebook_ptr,
    code_sq_ptr,
    out_ptr,
    n_rows,
    stride_x,
    stride_c,
    N_CODES: tl.constexpr,
    DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n_rows
    row_offset = rows.to(tl.int64) * stride_x
    best = tl.full([BLOCK_N], float("inf"), tl.float32)
    best_idx = tl.zeros([BLOCK_N], tl.int64)
    for k0 in range(0, N_CODES, BLOCK_K):
        codes = k0 + tl.arange(0, BLOCK_K)
        code_ok = codes < N_CODES
        code_offset = codes.to(tl.int64) * stride_c
        dot = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        for d0 in range(0, DIM, BLOCK_D):
            ds = d0 + tl.arange(0, BLOCK_D)
            d_ok = ds < DIM
            x_tile = tl.load(
                x_ptr + row_offset[:, None] + ds[None, :],
                mask=row_ok[:, None] & d_ok[None, :],
                other=0.0,
            )
            c_tile = tl.load(
                codebook_ptr + code_offset[None, :] + ds[:, None],
                mask=code_ok[None, :] & d_ok[:, None],
                other=0.0,
            )
            dot = tl.dot(x_tile, c_tile, dot, input_precision="ieee")
        # Padding codes get +inf, so they never win (a real distance is finite).
        code_sq = tl.load(code_sq_ptr + codes, mask=code_ok, other=float("inf"))
        dist = code_sq[None, :] - 2.0 * dot
        tile_best, tile_idx = tl.min(dist, axis=1, return_indices=True)
        better = tile_best < best
        best = tl.where(better, tile_best, best)
        best_idx = tl.where(better, tile_idx.to(tl.int64) + k0, best_idx)
    tl.store(out_ptr + rows, best_idx, mask=row_ok)


def _block_d(dim: int) -> int:
    # tl.dot needs every tile side >= 16; 64 keeps the register tile small for wide dims.
    return min(64, max(16, triton.next_power_of_2(dim)))


def fused_nearest_code(
    x: torch.Tensor,
    codebook: torch.Tensor,
    *,
    block_n: int = 64,
    block_k: int = 64,
    num_warps: int = 4,
) -> torch.Tensor:
    """Index of the nearest row of ``codebook`` ``[K, D]`` for each row of ``x`` ``[N, D]``.

    Same contract as :func:`tokquant.quantizers.rvq.nearest_code` for float32 inputs on one
    device; nothing of size ``N x K`` is ever stored.
    """
    if x.dtype != torch.float32 or codebook.dtype != torch.float32:
        raise ValueError(f"fused search needs float32 inputs. Found: {x.dtype}, {codebook.dtype}")
    if x.ndim != 2 or codebook.ndim != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"expected [N, D] and [K, D]. Found: {list(x.shape)}, {list(codebook.shape)}"
        )
    x = x.contiguous()
    codebook = codebook.contiguous()
    n, dim = x.shape
    k = codebook.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=x.device)
    if n == 0:
        return out
    code_sq = (codebook * codebook).sum(-1)
    grid = (triton.cdiv(n, block_n),)
    _nearest_code_kernel[grid](
        x,
        codebook,
        code_sq,
        out,
        n,
        x.stride(0),
        codebook.stride(0),
        N_CODES=k,
        DIM=dim,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        BLOCK_D=_block_d(dim),
        num_warps=num_warps,
    )
    return out
