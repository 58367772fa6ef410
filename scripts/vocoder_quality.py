"""Griffin-Lim vs a trained vocoder vs the original audio, on voices and languages the
tokenizers and vocoders never heard: the README's table.

For each demo tokenizer (``runs/demo/*.safetensors``, from ``scripts/demo.sh``), it
encodes the held-out corpus (``make_sample_corpus.py --heldout``: 30 utterances, 10 voices,
9 languages), decodes it through Griffin-Lim and through a vocoder trained on the bundled
corpus with the shipped recipe (``runs/vocoders/NAME.vocoder.safetensors``, trained here
if missing: about 11 minutes each on 2 cores) with and without the mel match, and scores
them with ``tokquant eval``; then the same on the bundled corpus the vocoders were trained
on. Prints two Markdown tables and the machine.

    python scripts/vocoder_quality.py [--names logmel-rvq-8x1024 logmel-bsq-16bit]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_ray import cpu_model  # noqa: E402

TQ = str(Path(sys.executable).parent / "tokquant")
DEMO = ROOT / "runs" / "demo"
VOCODERS = ROOT / "runs" / "vocoders"
COLUMNS = [("mel_distance", "mel dist ↓"), ("stoi", "STOI ↑"), ("pesq_wb", "PESQ-WB ↑"),
           ("dnsmos_ovrl", "DNSMOS OVRL ↑")]  # fmt: skip
#: Each decoder's name in the tables and its eval options (VOCODER: the vocoder's path).
DECODERS = [("griffin-lim", []), ("vocoder", ["--vocoder", "VOCODER", "--mel-match", "0"]),
            ("vocoder + mel match", ["--vocoder", "VOCODER"])]  # fmt: skip


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="+", default=["logmel-rvq-8x1024", "logmel-bsq-16bit"])
    parser.add_argument("--heldout", type=Path, help="held-out audio (default: made here)")
    parser.add_argument("--train-extra", type=Path, action="append", default=[],
                        help="more training audio for the vocoders (make_sample_corpus.py "
                        "--more-voices); their files are named NAME.more.vocoder.safetensors")  # fmt: skip
    args = parser.parse_args()
    suffix = ".more.vocoder.safetensors" if args.train_extra else ".vocoder.safetensors"
    extra = [a for path in args.train_extra for a in ("--data", str(path))]
    with tempfile.TemporaryDirectory() as tmp:
        heldout = args.heldout or Path(tmp) / "heldout"
        if args.heldout is None:
            run(sys.executable, str(ROOT / "scripts/make_sample_corpus.py"), "--heldout",
                "--out", str(heldout))  # fmt: skip
        rows, trained = [], {}
        for name in args.names:
            ckpt, vocoder = DEMO / f"{name}.safetensors", VOCODERS / f"{name}{suffix}"
            if not vocoder.is_file():
                start = time.perf_counter()
                run(TQ, "train-vocoder", str(ckpt), "--data", str(ROOT / "scripts/sample_data/audio"),
                    *extra, "--out", str(vocoder), "-q")  # fmt: skip
                trained[name] = time.perf_counter() - start
            for audio, where in (
                (heldout, "held-out"),
                (ROOT / "scripts/sample_data/audio", "heard"),
            ):
                tokens = Path(tmp) / where / name
                run(TQ, "encode", str(ckpt), str(audio), "--out", str(tokens), "-q")
                for decoder, extra in DECODERS:
                    extra = [a.replace("VOCODER", str(vocoder)) for a in extra]
                    report = json.loads(run(TQ, "eval", str(ckpt), str(tokens), "--audio",
                                            str(audio), "--json", "-q", *extra))  # fmt: skip
                    rows.append((where, name, decoder, report))
    print(f"{cpu_model()}, {os.cpu_count()} cores; scores at 16 kHz")
    for where, title in (("held-out", "30 held-out utterances (10 voices, 9 languages)"),
                         ("heard", "the bundled corpus the vocoders were trained on")):  # fmt: skip
        table = [row[1:] for row in rows if row[0] == where]
        print(f"\n{title}:\n")
        print("| tokenizer | kbps | decoder | " + " | ".join(h for _, h in COLUMNS) + " |")
        print("| --- | --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |")
        for name, decoder, report in table:
            cells = [f"{report['overall'].get(k, float('nan')):.3f}" for k, _ in COLUMNS]
            print(
                f"| {name} | {report['bitrate_kbps']:.1f} | {decoder} | " + " | ".join(cells) + " |"
            )
        reference = table[0][2]["reference"].get("dnsmos_ovrl")
        if reference is not None:
            print(f"| original audio | | | | | | {reference:.3f} |")
    for name, seconds in trained.items():
        print(f"\nvocoder for {name} trained here in {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
