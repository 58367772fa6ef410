"""The README's CLI tour, generated: run its commands on the bundled corpus (the RVQ half of
``scripts/demo.sh``, the same commands and flags) and print what each prints, progress
bars left out.

    .venv/bin/python scripts/tour.py            # print the tour
    .venv/bin/python scripts/tour.py --write    # rewrite README.md's tour block with it

Everything in the tour is deterministic on a CPU (same seed, same checkpoint bytes, same
codes) except wall times, which :func:`comparable` masks; ``tests/test_readme_tour.py``
runs the tour and fails when any other field drifts from README.md.
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
    f"--out runs/demo/rvq.safetensors --steps 200 --batch-frames 2048",
    f"tokquant encode runs/demo/rvq.safetensors {AUDIO} --out runs/demo/tokens",
    f"tokquant stats runs/demo/rvq.safetensors runs/demo/tokens --features {AUDIO} --top 3",
]
_PROGRESS = re.compile(r"━|\d+/\d+ \d+:\d\d:\d\d")
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
