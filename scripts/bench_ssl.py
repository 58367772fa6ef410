"""SSL front end: speed against torchaudio's bare extract_features, window boundary effect,
and `train --max-frames` memory.

    python scripts/bench_ssl.py [--device cpu] [--files 8] [--seconds 8] [--layer 6]

1. Real-time factor of `tokquant encode` (HUBERT_BASE and WAVLM_BASE_PLUS architectures,
   seeded random weights: speed does not depend on the values) against a loop of
   `model.extract_features(wave, num_layers=LAYER)` over the same files in the same process.
   Both are warm (model built and loaded before timing); tokquant's time includes reading,
   resampling, windowing, the k-means quantizer and writing token files.
2. Window boundary effect: a 75 s file through 30 s windows with 1 s context against the
   same file as one window: the share of frames whose k-means code agrees (random
   weights; real models need their real weights to measure).
3. Peak memory of `train --max-frames N` on feature corpora of growing size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import run_cli  # noqa: E402
from tokquant.audio.ssl import architecture  # noqa: E402


def _audio(folder: Path, files: int, seconds: float) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        t = np.arange(int(seconds * 16000)) / 16000
        wave = 0.2 * np.sin(2 * np.pi * (150 + 20 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(str(folder / f"u{i:03d}.wav"), wave.astype(np.float32), 16000)
    return files * seconds


def _weights(work: Path, model: str) -> Path:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    path = work / f"{model}.safetensors"
    save_file({k: v.contiguous() for k, v in architecture(model).build().state_dict().items()},
              str(path))  # fmt: skip
    return path


def _config(work: Path, model: str, weights: Path, layer: int, **frontend) -> Path:
    fe = {"kind": "ssl", "model": model, "layers": [layer], "weights": str(weights), **frontend}
    config = {"frontend": fe, "quantizer": {"family": "rvq", "num_levels": 1, "num_embeddings": 100},
              "projection": {"kind": "none"}, "train": {"steps": 0, "kmeans_iters": 10}}  # fmt: skip
    path = work / f"{model}-{len(frontend)}.yaml"
    path.write_text(json.dumps(config))
    return path


def speed(work: Path, model: str, args: argparse.Namespace) -> None:
    audio = work / "audio"
    total = _audio(audio, args.files, args.seconds)
    weights = _weights(work, model)
    ckpt = work / f"{model}.ckpt.safetensors"
    res = run_cli("train", "-c", _config(work, model, weights, args.layer), "-d", audio, "-o", ckpt,
                  "--max-frames", "20000", "--device", args.device, "-q", "--overwrite")  # fmt: skip
    assert res.code == 0, res.err
    run_cli("encode", ckpt, audio, "--out", work / "warm", "--device", args.device, "-q")
    t0 = time.perf_counter()
    res = run_cli("encode", ckpt, audio, "--out", work / f"tok-{model}", "--device", args.device,
                  "-q", "--overwrite")  # fmt: skip
    ours = time.perf_counter() - t0
    assert res.code == 0, res.err

    from safetensors.torch import load_file

    net = architecture(model).build().eval().to(args.device)
    net.load_state_dict(load_file(str(weights)))
    waves = [sf.read(str(p), dtype="float32")[0] for p in sorted(audio.glob("*.wav"))]
    with torch.no_grad():
        net.extract_features(
            torch.from_numpy(waves[0]).unsqueeze(0).to(args.device), num_layers=args.layer
        )  # fmt: skip  (warm)
        t0 = time.perf_counter()
        for wave in waves:
            x = torch.from_numpy(wave).unsqueeze(0).to(args.device)
            net.extract_features(x, num_layers=args.layer)[0][-1].cpu()
        bare = time.perf_counter() - t0
    print(f"{model} layer {args.layer}, {total:.0f} s of audio on {args.device}: "
          f"tokquant encode {ours:.2f} s ({total / ours:.2f}x real time), "
          f"bare extract_features {bare:.2f} s ({total / bare:.2f}x), "
          f"overhead {100 * (ours / bare - 1):+.1f}%", flush=True)  # fmt: skip


def boundary(work: Path, args: argparse.Namespace) -> None:
    import dataclasses

    from tokquant.audio.frontend import build_frontend, stream_features
    from tokquant.tokenizer.checkpoint import load_checkpoint

    folder = work / "long"
    _audio(folder, 1, 75.0)
    tok = load_checkpoint(work / "HUBERT_BASE.ckpt.safetensors").tokenizer
    windowed_fe = tok.config.frontend  # 30 s windows, 1 s context (the default)
    whole_fe = dataclasses.replace(windowed_fe, window_seconds=1000.0)
    path = folder / "u000.wav"
    windowed = np.concatenate(list(stream_features(path, build_frontend(windowed_fe))))
    whole = np.concatenate(list(stream_features(path, build_frontend(whole_fe))))
    with torch.no_grad():
        a = tok.encode(torch.from_numpy(windowed)).numpy()
        b = tok.encode(torch.from_numpy(whole)).numpy()
    agree = float((a == b).all(axis=1).mean())
    diff = np.abs(windowed - whole).max(axis=1)
    print(f"window boundary (HUBERT_BASE layer {args.layer}, 75 s file, 30 s windows, 1 s "
          f"context): {100 * agree:.2f}% of frames keep their k-means code vs one whole-file "
          f"window; per-frame max |diff| median {np.median(diff):.3g}, max {diff.max():.3g}",
          flush=True)  # fmt: skip


def memory(work: Path) -> None:
    feats = work / "feats"
    for size in (4, 16):
        folder = feats / f"n{size}"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(size)
        for i in range(size):
            np.save(folder / f"f{i}.npy", rng.standard_normal((25_000, 768)).astype(np.float32))
    config = work / "mem.yaml"
    config.write_text(json.dumps({"quantizer": {"family": "rvq", "num_levels": 1,
                                                "num_embeddings": 64},
                                  "projection": {"kind": "none"},
                                  "train": {"steps": 0, "kmeans_iters": 2}}))  # fmt: skip
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child would
    # report this (model-holding) process's peak.
    probe = ("import re,sys; from tokquant.cli.app import main\n"
             "try: main(sys.argv[1:])\nexcept SystemExit: pass\n"
             "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())\n"
             "print(int(hwm.group(1)) // 1024)")  # fmt: skip
    for size in (4, 16):
        for limit in ("50000", None):
            args = ["train", "-c", str(config), "-d", str(feats / f"n{size}"), "-o",
                    str(work / "m.safetensors"), "--overwrite", "-q"]  # fmt: skip
            if limit:
                args += ["--max-frames", limit]
            out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                                 text=True, check=True).stdout.split()[-1]  # fmt: skip
            corpus_gb = size * 25_000 * 768 * 4 / 1e9
            print(
                f"train on {size * 25_000} frames x 768 ({corpus_gb:.2f} GB), "
                f"--max-frames {limit or 'off'}: peak RSS {out} MiB",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--only", choices=["memory"], default=None)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    # Its corpora and checkpoints run to gigabytes: removed even when the run is stopped.
    with tempfile.TemporaryDirectory(prefix="tq-bench-ssl-") as tmp:
        work = Path(tmp)
        if args.only != "memory":
            for model in ("HUBERT_BASE", "WAVLM_BASE_PLUS"):
                speed(work, model, args)
            boundary(work, args)
        memory(work)


if __name__ == "__main__":
    main()
