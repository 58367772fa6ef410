"""Benchmark the quantizer core against vector-quantize-pytorch, in one run.

    python scripts/bench_quantizers.py [--device cpu|cuda] [--json out.json]

Prints, for BSQ (factorized and exact) and vector-quantize-pytorch's
``LFQ(spherical=True)``, the forward+backward time and peak memory of one training step
at code_dim 10, 13, 16, 18 and N = 512, 8192; then RVQ encode time against
``ResidualVQ`` with the share of identical codes.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over the step; on CPU each case
runs in its own subprocess and reports the growth of its peak resident set (VmHWM,
reset through /proc/self/clear_refs) over the step, so cases cannot hide in each
other's high-water mark. A case whose full N x 2^D softmax would not fit in memory is
reported as skipped with its estimated size, not run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

CODE_DIMS = (10, 13, 16, 18)
SIZES = (512, 8192)
METHODS = ("bsq-factorized", "bsq-exact", "vqp-lfq-spherical")


def _rss_peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _build(method: str, d: int) -> torch.nn.Module:
    if method == "bsq-factorized":
        from tokquant import BSQ

        return BSQ(d, entropy="factorized")
    if method == "bsq-exact":
        from tokquant import BSQ

        return BSQ(d, entropy="exact")
    from vector_quantize_pytorch import LFQ

    return LFQ(dim=d, codebook_size=2**d, spherical=True, entropy_loss_weight=0.1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_step_case(method: str, d: int, n: int, device: torch.device, repeats: int) -> dict:
    """Time one fwd+bwd step; measure its peak memory over the inputs already resident."""
    torch.manual_seed(0)
    q = _build(method, d).to(device)
    x = torch.randn(1, n, d, device=device)

    def step() -> None:
        xi = x.clone().requires_grad_(True)
        quantized, _, aux = q(xi)
        (quantized.square().mean() + aux).backward()

    step()  # warm-up: lazy buffers, allocator, kernels
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        _rss_peak_reset()
        base = _rss_kib("VmRSS") * 1024
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = _rss_kib("VmHWM") * 1024 - base
    return {"ms": 1000 * statistics.median(times), "peak_bytes": max(peak, 0)}


def estimated_full_softmax_bytes(d: int, n: int) -> int:
    # logits, softmax, log, products and their gradients: about 8 N x 2^D float32 tensors
    return 8 * n * (2**d) * 4


def bench_steps(device: torch.device, budget_bytes: int) -> list[dict]:
    rows = []
    for d in CODE_DIMS:
        for n in SIZES:
            for method in METHODS:
                row = {"method": method, "code_dim": d, "n": n}
                if (
                    method == "vqp-lfq-spherical"
                    and estimated_full_softmax_bytes(d, n) > budget_bytes
                ):
                    row["skipped"] = (
                        f"needs ~{estimated_full_softmax_bytes(d, n) / 2**30:.0f} GiB "
                        f"(full N x 2^D softmax)"
                    )
                    rows.append(row)
                    continue
                repeats = 5 if n * 2**d <= 2**24 else 1
                if device.type == "cuda":
                    row.update(run_step_case(method, d, n, device, repeats))
                else:
                    cmd = [sys.executable, __file__, "--case", method, str(d), str(n), str(repeats)]
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    if res.returncode != 0:
                        row["skipped"] = f"failed: {res.stderr.strip().splitlines()[-1:]}"
                    else:
                        row.update(json.loads(res.stdout.strip().splitlines()[-1]))
                rows.append(row)
                print(_fmt_step(row), flush=True)
    return rows


def bench_rvq(device: torch.device, n: int) -> dict:
    from vector_quantize_pytorch import ResidualVQ

    from tokquant import RVQ

    levels, k, dim = 8, 1024, 128
    torch.manual_seed(0)
    ours = RVQ(levels, k, dim).to(device).eval()
    with torch.no_grad():
        for level, cb in enumerate(ours.codebooks):
            cb.mul_(0.6**level)
    peer = ResidualVQ(dim=dim, num_quantizers=levels, codebook_size=k).to(device).eval()
    with torch.no_grad():
        for level, layer in enumerate(peer.layers):
            layer._codebook.embed.copy_(ours.codebooks[level].unsqueeze(0))
            layer._codebook.initted.fill_(True)
    x = torch.randn(n, dim, device=device)

    def timed(fn) -> tuple[float, torch.Tensor]:
        fn()
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        return 1000 * (time.perf_counter() - t0), out

    with torch.no_grad():
        ours_ms, ours_codes = timed(lambda: ours.encode(x))
        peer_ms, peer_out = timed(lambda: peer(x.unsqueeze(0))[1][0])
    agree = (ours_codes == peer_out).all(-1).float().mean().item()
    return {
        "levels": levels, "k": k, "dim": dim, "n": n,
        "tokquant_ms": ours_ms, "vqp_residualvq_ms": peer_ms,
        "speedup": peer_ms / ours_ms, "identical_code_rows": agree,
    }  # fmt: skip


def _fmt_step(row: dict) -> str:
    head = f"{row['method']:<20} D={row['code_dim']:<3} N={row['n']:<5}"
    if "skipped" in row:
        return f"{head} skipped: {row['skipped']}"
    return f"{head} {row['ms']:10.2f} ms  {row['peak_bytes'] / 2**20:10.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rvq-n", type=int, default=None, help="vectors for RVQ encode")
    parser.add_argument("--memory-budget-gib", type=float, default=None)
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process of a CPU run
        method, d, n, repeats = args.case
        res = run_step_case(method, int(d), int(n), torch.device("cpu"), int(repeats))
        print(json.dumps(res))
        return

    device = torch.device(args.device)
    if device.type == "cuda":
        budget = torch.cuda.get_device_properties(device).total_memory * 0.9
    else:
        budget = (args.memory_budget_gib or 12) * 2**30
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
          f"  torch {torch.__version__}  threads {torch.get_num_threads()}")  # fmt: skip
    steps = bench_steps(device, int(budget))
    by_key = {(r["method"], r["code_dim"], r["n"]): r for r in steps}
    print("\nratios (vqp LFQ / tokquant factorized):")
    for d in CODE_DIMS:
        for n in SIZES:
            ours, peer = by_key[("bsq-factorized", d, n)], by_key[("vqp-lfq-spherical", d, n)]
            if "ms" in ours and "ms" in peer:
                # RSS grows in pages and reuses freed memory: below 1 MiB it is noise, so
                # the ratio is then a lower bound.
                floor = 2**20 if device.type == "cpu" else 1
                mem = peer["peak_bytes"] / max(ours["peak_bytes"], floor)
                bound = ">=" if ours["peak_bytes"] < floor else "  "
                print(f"  D={d:<3} N={n:<5} time x{peer['ms'] / ours['ms']:8.1f}   "
                      f"memory {bound}x{mem:8.1f}")  # fmt: skip
    rvq_n = args.rvq_n or (262144 if device.type == "cuda" else 32768)
    rvq = bench_rvq(device, rvq_n)
    print(f"\nRVQ encode {rvq['levels']}x{rvq['k']} dim {rvq['dim']} N={rvq['n']}: "
          f"tokquant {rvq['tokquant_ms']:.1f} ms, ResidualVQ {rvq['vqp_residualvq_ms']:.1f} ms "
          f"(x{rvq['speedup']:.2f}), identical code rows {100 * rvq['identical_code_rows']:.3f}%")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "rvq_encode": rvq}, indent=2))


if __name__ == "__main__":
    main()
