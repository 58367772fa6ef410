"""The README's CLI tour, generated: run its commands on the bundled corpus (the RVQ half of
``scripts/demo.sh``, the same commands and flags) and print what each prints, progress
bars left out.

    .venv/bin/python scripts/tour.py            # print the tour
    .venv/bin/python scripts/tour.py --write    # rewrite README.md's tour block with it

On one machine everything in the tour is deterministic (same seed, same checkpoint bytes,
same codes) except wall times. Across CPU models (AMD AVX2, Intel AVX-512) the float
results of training differ in their last bits and so does everything trained: the final
loss, the validation numbers, the checkpoint id, the usage and reconstruction tables.
:func:`drift` compares what no CPU changes exactly (commands, words, frame, file, step
and token counts, bits per frame, codebook sizes) and the trained numbers within
:data:`REL_TOLERANCE`; ``tests/test_readme_tour.py`` runs the tour and fails on any drift.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- tour: begin (scripts/tour.py --write) -->"
END = "<!-- tour: end -->"
AUDIO = "scripts/sample_data/audio"

#: What the tour shows: each command as a reader would type it (``runs/demo`` paths).
COMMANDS = [
    f"tokquant train --config configs/logmel-rvq-8x1024.yaml --data {AUDIO} "
    f"--out runs/demo/logmel-rvq-8x1024.safetensors --steps 200 --batch-frames 2048",
    f"tokquant encode runs/demo/logmel-rvq-8x1024.safetensors {AUDIO} "
    f"--out runs/demo/logmel-rvq-8x1024/tokens",
    f"tokquant stats runs/demo/logmel-rvq-8x1024.safetensors runs/demo/logmel-rvq-8x1024/tokens "
    f"--features {AUDIO} --top 3",
]
#: Progress, a bar or (stderr not a terminal, a slow step) a timed line: never the tour's.
_PROGRESS = re.compile(r"━|\d+/\d+ \d+:\d\d:\d\d|: \d+/\d+ \(\d+%\), ")
_TIME = re.compile(r"\b\d+\.\d+s\b")


def run_tour(workdir: Path) -> str:
    """The tour's text; its commands run in ``workdir`` (which gets ``runs/demo`` and
    links to the repository's ``configs`` and ``scripts``, so every path printed is the
    one the tour shows)."""
    from tokquant.cli.app import main

    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("configs", "scripts"):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(ROOT / name)
    os.environ["COLUMNS"] = "100"  # rich sizes its tables to this
    here = Path.cwd()
    parts = []
    try:
        os.chdir(workdir)
        for command in COMMANDS:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(shlex.split(command)[1:])
                except SystemExit as exc:
                    if exc.code:
                        raise RuntimeError(
                            f"{command}: exit {exc.code}\n{err.getvalue()}"
                        ) from None
            shown = [line for line in err.getvalue().splitlines() if not _PROGRESS.search(line)]
            shown += out.getvalue().splitlines()
            text = "\n".join(line.rstrip() for line in shown)
            parts.append(f"$ {_wrap(command)}\n{text}".rstrip())
    finally:
        os.chdir(here)
    return "\n\n".join(parts) + "\n"


def _wrap(command: str) -> str:
    """A long command over two lines, as a shell reads it."""
    if len(command) <= 96:
        return command
    cut = command.rfind(" --", 0, 96)
    return f"{command[:cut]} \\\n    {command[cut + 1 :]}"


def comparable(text: str) -> str:
    """The tour's words and numbers without what changes from run to run: wall times,
    and the table borders and padding whose width follows a time's digits."""
    text = _TIME.sub("<time>", text)
    text = re.sub(r"(seconds\s+│?\s*)[\d.]+", r"\1<time>", text)
    text = re.sub(r"[\u2500-\u257f]", " ", text)  # box drawing
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


#: Lines whose numbers come from training, so from the CPU's float kernels (by their
#: first words), and the reconstruction table's values row (after its header).
_TRAINED = re.compile(r"^(final loss|val mse|val usage|checkpoint id|level\d+) ")
_RECON_HEADER = "frames MSE SNR cosine SNR normalised"
#: How far a trained number may move from one CPU model to another (measured: final loss
#: 0.02504 on AMD EPYC, 0.02495 on Intel Xeon; usage and dead counts by a few codes).
REL_TOLERANCE = 0.10
#: ... and a count of codes, by this many codes at least (dead codes: 9 on one, 14 on another).
ABS_COUNT_TOLERANCE = 12
_NUMBER = re.compile(r"^-?\d+(\.\d+)?%?$")


def drift(printed: str, shown: str) -> list[str]:
    """Where ``printed`` differs from ``shown`` beyond what a CPU model changes (empty:
    no drift). Both are compared as :func:`comparable` lines, token by token."""
    a, b = comparable(printed).splitlines(), comparable(shown).splitlines()
    if len(a) != len(b):
        return [f"{len(a)} lines printed, {len(b)} shown"]
    problems = []
    previous = ""
    for got, want in zip(a, b, strict=True):
        values_row = previous == _RECON_HEADER
        previous = want
        if got == want:
            continue
        g, w = got.split(), want.split()
        if not (_TRAINED.match(want) or values_row) or len(g) != len(w):
            problems.append(f"printed {got!r}, shown {want!r}")
            continue
        problems += [f"{w[0]}: {x!r} vs {y!r}" for i, (x, y) in enumerate(zip(g, w, strict=True))
                     if not _close(x, y, exact_number=values_row and i == 0)]  # fmt: skip
    return problems


def _close(got: str, want: str, *, exact_number: bool) -> bool:
    """Two tokens of a trained line: equal, or both numbers within tolerance (a values
    row's first number, its frame count, exactly), both checkpoint ids, or both top codes
    (``ID x COUNT``: which code is used most is the training's choice)."""
    if got == want:
        return True
    if re.fullmatch(r"[0-9a-f]{64}", got) and re.fullmatch(r"[0-9a-f]{64}", want):
        return True
    if re.fullmatch(r"\d+x\d+", got) and re.fullmatch(r"\d+x\d+", want):
        return True
    if exact_number or not (_NUMBER.match(got) and _NUMBER.match(want)):
        return False
    x, y = float(got.rstrip("%")), float(want.rstrip("%"))
    allowed = REL_TOLERANCE * max(abs(x), abs(y))
    if "." not in want:
        allowed = max(allowed, ABS_COUNT_TOLERANCE)
    return abs(x - y) <= allowed


def readme_tour(readme: str) -> str:
    """The tour as README.md shows it (between its markers, without the code fence)."""
    body = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    return body.strip().removeprefix("```console").removesuffix("```").strip("\n") + "\n"


def write_readme(tour: str) -> None:
    text = README.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n```console\n{tour}```\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md's tour block")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tour = run_tour(Path(tmp))
    if args.write:
        write_readme(tour)
    sys.stdout.write(tour)


if __name__ == "__main__":
    main()
