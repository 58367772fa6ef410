"""tokquant against its peers, in one process and one run: a table and JSON.

    python scripts/bench.py [--device cpu|cuda] [--json bench.json] [--rvq-n 262144] [--quick]

1. BSQ/LFQ training step (forward + backward, N x D input): tokquant factorized BSQ and
   LFQ, the exact full-softmax form (tokquant entropy="exact", chunked), and
   vector-quantize-pytorch ``LFQ(spherical=True)``; time and peak memory at code_dim
   10/13/16/18/32/64 and N = 512/8192 (and 2048 at D=18 on CPU). A case whose N x 2^D softmax cannot fit is reported
   as "cannot run" with its estimated size.
2. RVQ encode, 8 levels x 1024 codes, dim 128, N = 262,144: tokquant, ``ResidualVQ``
   with the same codebooks, a plain float32 matmul-and-argmin (one N x K matrix per
   level) and a float64 reference; time and the share of codes equal to the float64
   codes. On CUDA also tokquant's other searches (see :func:`bench_rvq`). Then beam
   search at 8 x 256, dim 80: encode at beam 1 and 5 and a training step of each.
3. CLI encode throughput (frames/s, files/s) on generated feature files, and the start-up
   time of ``tokquant --help``.

Peak memory: on CUDA ``max_memory_allocated`` over the step; on CPU the peak of live
tensor bytes over one profiled step (the same quantity, from the profiler's allocation
events), with the growth of the resident-set peak (VmHWM) as ``rss_peak_bytes``. On CPU each
step case runs in its own subprocess.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

CODE_DIMS = (10, 13, 16, 18, 32, 64)
SIZES = (512, 8192)
METHODS = ("tokquant-bsq", "tokquant-lfq", "exact-softmax", "vqp-lfq-spherical")


# -------------------------------------------------------------------------- step benchmark


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(method: str, d: int) -> torch.nn.Module:
    from tokquant import BSQ, LFQ

    if method == "tokquant-bsq":
        return BSQ(d, entropy="factorized")
    if method == "tokquant-lfq":
        return LFQ(d, entropy="factorized")
    if method == "exact-softmax":
        return BSQ(d, entropy="exact")
    from vector_quantize_pytorch import LFQ as PeerLFQ

    return PeerLFQ(dim=d, codebook_size=2**d, spherical=True, entropy_loss_weight=0.1)


def step_case(method: str, d: int, n: int, device: torch.device, repeats: int) -> dict:
    torch.manual_seed(0)
    q = _build(method, d).to(device)
    x = torch.randn(1, n, d, device=device)

    def step() -> None:
        xi = x.clone().requires_grad_(True)
        quantized, _, aux = q(xi)
        (quantized.square().mean() + aux).backward()

    step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")
        base = _rss_kib("VmRSS") * 1024
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
        return {"ms": 1000 * statistics.median(times), "peak_bytes": max(int(peak), 0)}
    rss = _rss_kib("VmHWM") * 1024 - base
    return {
        "ms": 1000 * statistics.median(times),
        "peak_bytes": cpu_tensor_peak(step),
        "rss_peak_bytes": max(int(rss), 0),
    }


def cpu_tensor_peak(step) -> int:
    """Peak bytes of live CPU tensors allocated during one ``step``: the CPU analogue of
    ``torch.cuda.max_memory_allocated``, from the profiler's allocation events (the
    resident-set peak also moves with the allocator's caching, by tens of MiB)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def softmax_bytes(d: int, n: int) -> int:
    """What the full N x 2^D softmax needs with its backward (~8 float32 copies)."""
    return 8 * n * (2**d) * 4


def exact_cannot_run(method: str, d: int, n: int, budget: int) -> str | None:
    if method == "vqp-lfq-spherical" and softmax_bytes(d, n) > budget:
        return f"cannot run: needs ~{softmax_bytes(d, n) / 2**30:,.0f} GiB"
    if method == "exact-softmax":
        if d > 20:
            return "cannot run: 2^D codes (tokquant refuses D > 20)"
        if n * 2**d * d > 2**36:  # compute, not memory: chunked, but hours on a CPU
            return "skipped: > 2^36 multiply-adds"
    return None


def bench_steps(device: torch.device, budget: int, quick: bool) -> list[dict]:
    rows = []
    dims = (10, 16, 18, 32, 64) if quick else CODE_DIMS
    for d in dims:
        # On a CPU box the peer cannot hold D=18 at N=8192 (~57 GiB); N=2048 is the
        # largest size where the same-run ratio at D=18 can still be measured.
        extra = (2048,) if d == 18 and device.type == "cpu" else ()
        for n in sorted(SIZES + extra):
            for method in METHODS:
                row = {"method": method, "code_dim": d, "n": n}
                why = exact_cannot_run(method, d, n, budget)
                if why:
                    row["skipped"] = why
                elif device.type == "cuda":
                    try:
                        row.update(step_case(method, d, n, device, 10))
                    except torch.cuda.OutOfMemoryError:
                        row["skipped"] = "out of GPU memory"
                    torch.cuda.empty_cache()  # the next case starts from an empty cache
                else:
                    repeats = (
                        5 if n * 2 ** min(d, 20) <= 2**24 or method.startswith("tokquant") else 1
                    )
                    cmd = [
                        sys.executable,
                        __file__,
                        "--step-case",
                        method,
                        str(d),
                        str(n),
                        str(repeats),
                    ]
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    if res.returncode:
                        row["skipped"] = "failed: " + (res.stderr.strip().splitlines() or ["?"])[-1]
                    else:
                        row.update(json.loads(res.stdout.strip().splitlines()[-1]))
                rows.append(row)
                print("  " + _fmt_step(row), flush=True)
    return rows


def _fmt_step(row: dict) -> str:
    head = f"{row['method']:<18} D={row['code_dim']:<3} N={row['n']:<5}"
    if "skipped" in row:
        return f"{head} {row['skipped']}"
    rss = f" (RSS +{row['rss_peak_bytes'] / 2**20:.1f} MiB)" if "rss_peak_bytes" in row else ""
    return f"{head} {row['ms']:10.2f} ms {row['peak_bytes'] / 2**20:10.1f} MiB{rss}"


# -------------------------------------------------------------------------- RVQ encode


def bench_rvq(device: torch.device, n: int) -> dict:
    """RVQ encode, tokquant's searches against ResidualVQ and float32/float64 baselines.

    CPU: one timed run after a warm-up on 4,096 rows (the peer takes tens of seconds).
    CUDA: median of 10 runs after a full-size warm-up, plus tokquant's matmul search at
    two more block sizes and the fused Triton kernel (``search="fused"``) with a sweep of
    its tile sizes on one level, so a GPU run shows which search should be the default.
    """
    from vector_quantize_pytorch import ResidualVQ

    from tokquant import RVQ

    levels, k, dim = 8, 1024, 128
    cuda = device.type == "cuda"
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
    codebooks = [cb.detach() for cb in ours.codebooks]
    x = torch.randn(n, dim, device=device)

    def greedy(rows: torch.Tensor, dtype: torch.dtype, block: int) -> torch.Tensor:
        """Plain matmul-and-argmin over ``block`` rows at a time (all rows: one matrix)."""
        residual = rows.to(dtype).clone()
        cols = []
        for cb in codebooks:
            c = cb.to(dtype)
            c_sq = c.pow(2).sum(-1)
            idx = torch.cat([(c_sq - 2 * r @ c.T).argmin(-1) for r in residual.split(block)])
            residual -= c[idx]
            cols.append(idx)
        return torch.stack(cols, -1)

    def variant(**kwargs) -> RVQ:
        q = RVQ(levels, k, dim, **kwargs).to(device).eval()
        q.load_state_dict(ours.state_dict())
        return q

    runs = {
        "tokquant": lambda r: ours.encode(r),
        "vqp_residualvq": lambda r: peer(r.unsqueeze(0))[1][0],
        "plain_float32": lambda r: greedy(r, torch.float32, r.shape[0]),
        "float64_reference": lambda r: greedy(r, torch.float64, 8192),
    }
    if cuda:
        for block in (1 << 22, 1 << 23):
            q = variant(chunk_elements=block)
            runs[f"tokquant_matmul_block_{block}"] = lambda r, q=q: q.encode(r)
        fused = variant(search="fused")
        runs["tokquant_fused"] = lambda r: fused.encode(r)

    out: dict = {"levels": levels, "k": k, "dim": dim, "n": n, "device": str(device)}
    codes = {}
    torch.backends.cuda.matmul.allow_tf32 = False  # the baselines too: true float32
    with torch.no_grad():
        for name, fn in runs.items():
            fn(x if cuda else x[:4096])
            _sync(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for _ in range(10 if cuda else 1):
                t0 = time.perf_counter()
                codes[name] = fn(x)
                _sync(device)
                times.append(1000 * (time.perf_counter() - t0))
            out[f"{name}_ms"] = statistics.median(times)
            if cuda:
                out[f"{name}_peak_bytes"] = torch.cuda.max_memory_allocated(device)
            print(f"  {name:<34} {out[f'{name}_ms']:10.1f} ms", flush=True)
        ref = codes["float64_reference"]
        for name, c in codes.items():
            out[f"{name}_codes_equal_float64"] = float((c == ref).float().mean())
        ours_names = [name for name in runs if name.startswith("tokquant")]
        best = min(ours_names, key=lambda name: out[f"{name}_ms"])
        out["best_tokquant"] = best
        out["speedup_vs_vqp"] = out["vqp_residualvq_ms"] / out["tokquant_ms"]
        out["best_speedup_vs_vqp"] = out["vqp_residualvq_ms"] / out[f"{best}_ms"]
        if cuda:
            out["fused_tiles_one_level_ms"] = fused_tile_sweep(x, codebooks[0])
    return out


def bench_rvq_beam(device: torch.device, n: int = 4096) -> dict:
    """Beam search cost at the 64-bit speech setting (8 x 256 codes, dim 80, a batch of
    ``n`` rows): encode at beam 1 and 5, and one training step of ``quantizer.beam: 5``
    (beam-search assignments, EMA, dead codes) against a greedy one. Median of 5 after a
    warm-up."""
    from tokquant import RVQ

    torch.manual_seed(0)
    x = torch.randn(n, 80, device=device)
    kw = {"ema_decay": 0.99, "dead_code_threshold": 0.2, "dead_code_window": 10}
    models = {b: RVQ(8, 256, 80, beam=b, **kw).to(device) for b in (1, 5)}
    models[5].load_state_dict(models[1].state_dict())

    out: dict = {"levels": 8, "k": 256, "dim": 80, "n": n, "device": str(device)}
    with torch.no_grad():
        for b, q in models.items():
            q.eval()
            out[f"encode_beam{b}_ms"] = _median_ms(lambda q=q, b=b: q.encode(x, beam=b), device, 5)
            q.train()
            out[f"train_step_beam{b}_ms"] = _median_ms(lambda q=q: q(x), device, 5)
    for key in [k for k in out if k.endswith("_ms")]:
        print(f"  {key:<34} {out[key]:10.1f} ms", flush=True)
    return out


def fused_tile_sweep(x: torch.Tensor, codebook: torch.Tensor) -> dict[str, float]:
    """One level of the fused search at several tile shapes (median of 10, ms)."""
    from tokquant.quantizers.fused_search import fused_nearest_code

    result = {}
    for block_n, block_k, warps in [
        (64, 64, 4),
        (128, 64, 4),
        (128, 128, 8),
        (64, 128, 4),
        (256, 64, 8),
    ]:
        result[f"{block_n}x{block_k}/{warps}w"] = _median_ms(
            lambda bn=block_n, bk=block_k, w=warps: fused_nearest_code(
                x, codebook, block_n=bn, block_k=bk, num_warps=w),
            x.device, 10)  # fmt: skip
    return result


def _median_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after one warm-up, synchronised."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


# -------------------------------------------------------------------------- CLI


def bench_cli(device: torch.device) -> dict:
    from tokquant.tokenizer.checkpoint import save_checkpoint
    from tokquant.tokenizer.config import TokenizerConfig
    from tokquant.tokenizer.model import Tokenizer

    tq = Path(sys.executable).with_name("tokquant")
    help_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([str(tq), "--help"], check=True, capture_output=True)
        help_times.append(time.perf_counter() - t0)
    work = Path(tempfile.mkdtemp(prefix="tq-bench-cli-"))
    rng = np.random.default_rng(0)
    frames = 0
    for i in range(2000):
        n = int(rng.integers(100, 400))
        (work / "in" / f"d{i // 500}").mkdir(parents=True, exist_ok=True)
        np.save(
            work / "in" / f"d{i // 500}" / f"f{i:05d}.npy",
            rng.standard_normal((n, 80)).astype(np.float32),
        )
        frames += n
    config = TokenizerConfig.from_dict(
        {"quantizer": {"family": "bsq", "code_dim": 16}, "features": {"dim": 80}}
    )
    save_checkpoint(Tokenizer(config), work / "bsq.safetensors")
    t0 = time.perf_counter()
    subprocess.run([str(tq), "encode", str(work / "bsq.safetensors"), str(work / "in"), "--out",
                    str(work / "out"), "--quiet", "--device", device.type], check=True, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - t0
    shutil.rmtree(work, ignore_errors=True)
    return {
        "help_seconds_median": statistics.median(help_times),
        "encode_files": 2000, "encode_frames": frames, "encode_wall_seconds": wall,
        "files_per_second": 2000 / wall, "frames_per_second": frames / wall,
    }  # fmt: skip


# -------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rvq-n", type=int, default=None)
    parser.add_argument("--memory-budget-gib", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer code dims")
    parser.add_argument("--sections", default="steps,rvq,beam,cli", help="comma-separated subset")
    parser.add_argument("--step-case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_case:
        method, d, n, repeats = args.step_case
        print(json.dumps(step_case(method, int(d), int(n), torch.device("cpu"), int(repeats))))
        return
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        budget = int(torch.cuda.get_device_properties(device).total_memory * 0.9)
    else:
        name = f"cpu ({torch.get_num_threads()} threads)"
        budget = int((args.memory_budget_gib or 16) * 2**30)
    print(f"device {name}, torch {torch.__version__}")
    sections = set(args.sections.split(","))
    report: dict = {"device": name, "torch": torch.__version__}
    if "steps" in sections:
        print("1. BSQ/LFQ training step (fwd+bwd)")
        report["steps"] = bench_steps(device, budget, args.quick)
        report["ratios"] = step_ratios(report["steps"], device)
    if "rvq" in sections:
        rvq_n = args.rvq_n or 262144
        print(f"2. RVQ encode 8x1024, dim 128, N={rvq_n}")
        rvq = report["rvq_encode"] = bench_rvq(device, rvq_n)
        print(f"  tokquant x{rvq['speedup_vs_vqp']:.2f} faster than ResidualVQ (best tokquant search: "
              f"{rvq['best_tokquant']}, x{rvq['best_speedup_vs_vqp']:.2f}); codes equal to float64: "
              f"tokquant {100 * rvq['tokquant_codes_equal_float64']:.4f}%, "
              f"ResidualVQ {100 * rvq['vqp_residualvq_codes_equal_float64']:.4f}%, "
              f"plain float32 {100 * rvq['plain_float32_codes_equal_float64']:.4f}%")  # fmt: skip
        if "fused_tiles_one_level_ms" in rvq:
            print("  fused kernel, one level, by tile: " + ", ".join(
                f"{tile} {ms:.2f} ms" for tile, ms in rvq["fused_tiles_one_level_ms"].items()))  # fmt: skip
    if "beam" in sections:
        print("2b. RVQ beam search, 8x256, dim 80, N=4096")
        report["rvq_beam"] = bench_rvq_beam(device)
    if "cli" in sections:
        print("3. CLI")
        cli = report["cli"] = bench_cli(device)
        print(f"  tokquant --help {1000 * cli['help_seconds_median']:.0f} ms (median of 5); encode 2,000 files "
              f"({cli['encode_frames']} frames, dim 80, BSQ-16): {cli['encode_wall_seconds']:.2f} s wall, "
              f"{cli['files_per_second']:.0f} files/s, {cli['frames_per_second']:,.0f} frames/s")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def step_ratios(steps: list[dict], device: torch.device) -> list[dict]:
    """Peer / tokquant BSQ time and memory for every case where both ran."""
    by = {(r["method"], r["code_dim"], r["n"]): r for r in steps}
    ratios = []
    for (method, d, n), row in by.items():
        peer = by.get(("vqp-lfq-spherical", d, n))
        if method == "tokquant-bsq" and peer and "ms" in row and "ms" in peer:
            ratios.append({"code_dim": d, "n": n, "time_ratio": peer["ms"] / row["ms"],
                           "memory_ratio": peer["peak_bytes"] / max(row["peak_bytes"], 1)})  # fmt: skip
    for r in ratios:
        print(f"  vqp LFQ / tokquant BSQ at D={r['code_dim']}, N={r['n']}: time x{r['time_ratio']:.1f}, "
              f"memory x{r['memory_ratio']:.1f}")  # fmt: skip
    return ratios


if __name__ == "__main__":
    main()
