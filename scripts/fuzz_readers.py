"""Long fuzzing run of the token-file, corpus and checkpoint readers, and of hostile file
names and corpus keys through the CLI (the CI runs are 1,500 examples per reader and 25
per name/key test; this one is as long as you like).

    python scripts/fuzz_readers.py [--examples 100000] [--names 2000] [--seed 0]

Builds a small checkpoint, a token file and a corpus, then feeds each reader mutated
copies (the same mutation strategies as tests/test_fuzz.py, randomised with the seed).
Prints any input that raised something other than FormatError/InputError, and the count
of clean errors and accepted files. Then runs ``--names`` hostile feature-file names
through encode/decode/stats/info/verify and as many hostile keys through a corpus
(tests/hostile_names.py: what each must show). Exits 1 if anything broke the contract.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import make_features, run_cli, write_config  # noqa: E402
from tests.hostile_names import FILE_NAMES, KEYS, KeyCase, NameCase  # noqa: E402
from tests.test_fuzz import CLEAN, _mutate_json, mutations  # noqa: E402
from tokquant.formats.corpus import Corpus, verify_corpus  # noqa: E402
from tokquant.formats.tokens import read_tokens  # noqa: E402
from tokquant.tokenizer.checkpoint import load_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--names", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tq-fuzz-") as tmp:
        sys.exit(fuzz_all(Path(tmp), args))


def fuzz_all(work: Path, args: argparse.Namespace) -> int:
    """Every reader, then names and keys; returns the exit status (1: a broken contract)."""
    feats = make_features(work / "features")
    ckpt = work / "bsq.safetensors"
    run_cli("train", "-c", write_config(work / "c.yaml", train__steps=5), "-d", feats, "-o", ckpt)
    run_cli("encode", ckpt, feats / "a.npy", "--out", work / "tok")
    run_cli("encode", ckpt, feats, "--out", work / "corpus", "--shards", "--shard-size", "2")
    tokens = work / "tok" / "a.tokens.safetensors"
    manifest = json.loads((work / "corpus" / "manifest.json").read_text())
    counts = {"clean": 0, "accepted": 0, "bad": 0}

    def run(reader, path: Path) -> None:
        try:
            reader(path)
            counts["accepted"] += 1
        except CLEAN:
            counts["clean"] += 1
        except Exception:  # noqa: BLE001 - exactly what this script looks for
            counts["bad"] += 1
            print(f"--- unclean error reading {path}:\n{traceback.format_exc()}", flush=True)

    def read_corpus(root: Path) -> None:
        for _ in Corpus(root):
            pass
        verify_corpus(root)

    fuzz = settings(max_examples=args.examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip
    t0 = time.perf_counter()

    def fuzz_file(name: str, blob: bytes, reader, target: Path) -> None:
        @seed(args.seed)
        @fuzz
        @given(mutations(blob))
        def one(data: bytes) -> None:
            target.write_bytes(data)
            run(reader, target)

        one()
        print(f"{name}: done, {counts}", flush=True)

    fuzz_file("tokens", tokens.read_bytes(), read_tokens, work / "x.tokens.safetensors")
    fuzz_file("checkpoint", ckpt.read_bytes(), load_checkpoint, work / "x.safetensors")

    @seed(args.seed)
    @fuzz
    @given(st.data())
    def corpus_case(data) -> None:
        (work / "corpus" / "manifest.json").write_text(
            json.dumps(_mutate_json(data.draw, manifest))
        )
        run(read_corpus, work / "corpus")

    corpus_case()
    print(f"all readers: {counts} in {time.perf_counter() - t0:.0f} s", flush=True)
    broken = fuzz_names(work, ckpt, feats, args)
    return 1 if counts["bad"] or broken else 0


def fuzz_names(work: Path, ckpt: Path, feats: Path, args: argparse.Namespace) -> int:
    """Hostile names and keys (tests/hostile_names.py); returns how many broke the contract."""
    features = np.load(feats / "a.npy")
    plain = work / "plain"
    plain.mkdir()
    np.save(plain / "a.npy", features)
    np.save(plain / "plain.npy", features)
    run_cli("encode", ckpt, plain, "--out", work / "plain-tok")
    run_cli("decode", ckpt, work / "plain-tok", "--out", work / "plain-ref")
    run_cli("encode", ckpt, plain, "--out", work / "base", "--shards")
    reference = np.load(work / "plain-ref" / "a.npy")
    outcomes: Counter[str] = Counter()
    many = settings(max_examples=args.names, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip

    def attempt(what: str, case, value: str) -> None:
        try:
            outcomes[f"{what}: {case(value)}"] += 1
        except Exception:  # noqa: BLE001 - a broken contract is what this looks for
            outcomes[f"{what}: BROKE THE CONTRACT"] += 1
            print(f"--- {what} {value!r}:\n{traceback.format_exc()}", flush=True)

    t0 = time.perf_counter()

    @seed(args.seed)
    @many
    @given(FILE_NAMES)
    def names(name: str) -> None:
        attempt("file name", NameCase(work, ckpt, features, reference).run, name)

    @seed(args.seed)
    @many
    @given(KEYS)
    def keys(key: str) -> None:
        attempt("corpus key", lambda k: KeyCase(work, ckpt, reference).run(work / "base", k), key)

    names()
    keys()
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:6d}  {outcome}")
    print(f"names and keys: {sum(outcomes.values())} cases in {time.perf_counter() - t0:.0f} s")
    return sum(n for o, n in outcomes.items() if "BROKE" in o)


if __name__ == "__main__":
    main()
