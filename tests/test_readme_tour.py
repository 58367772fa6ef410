"""README's CLI tour is what the commands print today: run them (the RVQ half of the demo)
and compare every field but wall times (issue 23: the tour had drifted from the demo)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch

from tokquant.formats.tokens import read_tokens
from tokquant.runners.features import FeatureReader
from tokquant.sources import FileSource
from tokquant.tokenizer.checkpoint import load_checkpoint

spec = importlib.util.spec_from_file_location(
    "tour", Path(__file__).resolve().parent.parent / "scripts" / "tour.py"
)
tour = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tour)


def test_the_readme_tour_is_what_the_commands_print(tmp_path):
    """On any CPU: counts, words and commands exactly, trained numbers within the
    tolerance ``scripts/tour.py`` states (float training differs across CPU models)."""
    printed = tour.run_tour(tmp_path)
    shown = tour.readme_tour(tour.README.read_text())
    problems = tour.drift(printed, shown)
    assert not problems, "README's tour drifted: run `python scripts/tour.py --write`\n" + (
        "\n".join(problems) + "\n" + printed
    )

    # stats' normalised SNR is the closed form on the tokenizer's standardised features
    ckpt = load_checkpoint(tmp_path / "runs/demo/logmel-rvq-8x1024.safetensors")
    tok = ckpt.tokenizer
    mean, std = tok.mean.numpy().astype(np.float64), tok.std.numpy().astype(np.float64)
    signal = error = 0.0
    for path in sorted((tour.ROOT / tour.AUDIO).rglob("*.flac")):
        key = path.relative_to(tour.ROOT / tour.AUDIO).with_suffix("")
        codes = read_tokens(
            tmp_path / "runs/demo/logmel-rvq-8x1024/tokens" / f"{key}.tokens.safetensors"
        ).codes
        x = FeatureReader.of(tok).whole(FileSource(key=Path(path.name), file=path))
        x = x.astype(np.float64)
        x_hat = tok.decode(torch.from_numpy(codes)).numpy().astype(np.float64)
        signal += float((((x - mean) / std) ** 2).sum())
        error += float((((x - x_hat) / std) ** 2).sum())
    want = f"{10 * math.log10(signal / error):.2f} dB"
    assert want in printed.split("SNR normalised")[1]


def test_the_tour_comparison_catches_drift_and_allows_a_cpus_last_bits():
    import re

    shown = tour.readme_tour(tour.README.read_text())
    assert tour.drift(shown, shown) == []
    loss = re.search(r"final loss +│ (\d\.\d+)", shown).group(1)
    near, far = f"{float(loss) * 1.004:.5f}", f"{float(loss) * 1.5:.5f}"  # AMD vs Intel: 0.4 %
    other_cpu = shown.replace(f"│ {loss}", f"│ {near}")
    assert other_cpu != shown and tour.drift(other_cpu, shown) == []
    for old, new in (("10434 frames of dim 80", "10433 frames of dim 80"),
                     ("│ 30    │       0 │", "│ 29    │       0 │"),
                     (f"│ {loss}", f"│ {far}"),
                     ("--top 3", "--top 4")):  # fmt: skip
        assert old in shown, old
        assert tour.drift(shown.replace(old, new), shown), old


def test_the_readme_python_section_runs(tmp_path, monkeypatch, capsys):
    """Its first block, on a checkpoint of the demo's RVQ config (fewer steps)."""
    from tests.conftest import run_cli

    ckpt = tmp_path / "rvq.safetensors"
    res = run_cli("train", "-c", tour.ROOT / "configs/logmel-rvq-8x1024.yaml", "-d",
                  tour.ROOT / tour.AUDIO / "us_m", "-o", ckpt, "--steps", "2", "-q")  # fmt: skip
    assert res.code == 0, res.err
    readme = tour.README.read_text()
    block = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "tokquant.load(" in block and "encode_audio" in block
    monkeypatch.chdir(tour.ROOT)
    exec(block.replace("runs/demo/logmel-rvq-8x1024.safetensors", str(ckpt)), {})  # noqa: S102
    printed = capsys.readouterr().out
    assert printed.startswith("torch.Size([342, 8]) 100.0 "), printed
