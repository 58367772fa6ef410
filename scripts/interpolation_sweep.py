"""`train.interpolate` across voices: greedy RVQ 8x256 with each bundled voice held out.

    .venv/bin/python scripts/interpolation_sweep.py [--seeds 0 1 2] [--share 0 0.25 0.5 1]

For every voice of the sample corpus: train on the other four, measure SNR (dB) on it, as
scripts/quality.py's 64-bit rows do (same k-means sample, batches and settings; seeds set
the k-means and codebook initialisation), for each share of interpolated frames and for
vector-quantize-pytorch's ResidualVQ (decay 0.95) on plain batches. Prints one line a run,
then the mean per voice and setting. About 16 s a tokquant run and 34 s a ResidualVQ run
on one core (it runs on one: pass --voices to split the work over processes).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import torch
from quality import SAMPLES, features, snr, tokquant_rvq, vqp_rvq  # scripts/quality.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--share", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--voices", nargs="+",
                        default=sorted(p.name for p in SAMPLES.iterdir() if p.is_dir()))  # fmt: skip
    args = parser.parse_args()
    # One thread: ResidualVQ's k-means init follows the summation order, so the numbers
    # repeat only at a fixed thread count (tokquant's do at any).
    torch.set_num_threads(1)
    results: dict[tuple[str, str], list[float]] = defaultdict(list)
    for voice in args.voices:
        train, held, lengths, _ = features(voice)
        init = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(2))[:8192]]
        for seed in args.seeds:
            run_args = argparse.Namespace(steps=300, batch=4096, seed=seed, lengths=lengths)
            runs = [(f"interpolate {p:g}", tokquant_rvq, (8, 1), {"interpolate": p})
                    for p in args.share]  # fmt: skip
            runs.append(("vqp ResidualVQ 0.95", vqp_rvq, (0.95,), {}))
            for name, make, positional, keywords in runs:
                recon = make(train, init, run_args, *positional, **keywords)(held)[0]
                results[voice, name].append(snr(held, recon))
                print(f"{voice} seed {seed} {name}: {results[voice, name][-1]:.3f} dB", flush=True)
    names = list(dict.fromkeys(name for _, name in results))
    print("voice  " + " | ".join(names))
    for voice in args.voices:
        print(voice, " | ".join(f"{statistics.mean(results[voice, n]):.2f}" for n in names))
    means = [statistics.mean(x for v in args.voices for x in results[v, n]) for n in names]
    print("mean ", " | ".join(f"{m:.2f}" for m in means))


if __name__ == "__main__":
    main()
